using NativeSparsity.Engine.Backends.Cpu;
using NativeSparsity.Engine.Backends.Cuda;
using NativeSparsity.Engine.Backends.Cuda.Native;

namespace NativeSparsity.Engine.Backends;

/// <summary>Turns a <c>--device</c> option into a backend.</summary>
public static class BackendFactory
{
    public const string DeviceOptionHelp = "cpu, cuda, cuda:N (GPU N) or auto (the GPU when one is usable, else the CPU)";

    /// <summary>
    /// Creates the backend named by <paramref name="device"/>: "cpu", "cuda" / "cuda:N", or "auto".
    /// <paramref name="description"/> says what was picked and, for auto, why. "cuda" on a machine with
    /// no usable GPU throws <see cref="CudaUnavailableException"/> naming what is missing (the driver
    /// library, a device, NVRTC, cuBLAS) and where it looked.
    /// </summary>
    public static IBackend Create(string device, out string description, int cpuThreads = 0)
    {
        ArgumentNullException.ThrowIfNull(device);
        string d = device.Trim().ToLowerInvariant();
        switch (d)
        {
            case "cpu":
            {
                var cpu = new CpuBackend(cpuThreads);
                description = cpu.Name;
                return cpu;
            }
            case "auto":
                try
                {
                    var gpu = CudaBackend.Create();
                    description = $"{gpu.Name} (auto: a usable GPU was found)";
                    return gpu;
                }
                catch (Exception e) when (e is CudaUnavailableException or CudaException or CudaLibraryNotFoundException
                                             or KernelCompileException or NotSupportedException or EntryPointNotFoundException
                                             or DllNotFoundException)
                {
                    var cpu = new CpuBackend(cpuThreads);
                    description = $"{cpu.Name} (auto: no usable GPU: {e.Message})";
                    return cpu;
                }
        }
        if (d == "cuda" || d.StartsWith("cuda:", StringComparison.Ordinal))
        {
            int ordinal = 0;
            if (d.Length > 5 && !int.TryParse(d[5..], out ordinal))
                throw new ArgumentException($"--device {device}: expected cuda:N with N a GPU number", nameof(device));
            try
            {
                var gpu = CudaBackend.Create(ordinal);
                description = gpu.Name;
                return gpu;
            }
            catch (CudaException e)
            {
                throw new CudaUnavailableException($"--device {device}: the GPU could not be opened: {e.Message}", e);
            }
            catch (EntryPointNotFoundException e)
            {
                throw new CudaUnavailableException(
                    $"--device {device}: a CUDA library lacks a function the engine needs (driver or toolkit older than CUDA 11?): {e.Message}", e);
            }
        }
        throw new ArgumentException($"--device {device}: expected {DeviceOptionHelp}", nameof(device));
    }
}
