using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace NativeSparsity.Engine.Backends.Cuda.Native;

/// <summary>CUresult; only success is named, the rest is reported through cuGetErrorName/String.</summary>
public enum CuResult { Success = 0 }

/// <summary>The few CUdevice_attribute values the engine reads.</summary>
public enum CuDeviceAttribute
{
    MaxThreadsPerBlock = 1,
    MaxSharedMemoryPerBlock = 8,
    ClockRate = 13,
    MultiprocessorCount = 16,
    MemoryClockRate = 36,
    GlobalMemoryBusWidth = 37,
    L2CacheSize = 38,
    ComputeCapabilityMajor = 75,
    ComputeCapabilityMinor = 76,
    MaxSharedMemoryPerBlockOptin = 97,
}

public readonly record struct CuDevice(int Ordinal);
public readonly record struct CuContext(nint Handle);
public readonly record struct CuStream(nint Handle) { public static readonly CuStream Default = new(0); }
public readonly record struct CuEvent(nint Handle);
public readonly record struct CuModule(nint Handle);
public readonly record struct CuFunction(nint Handle);
/// <summary>A device address (CUdeviceptr).</summary>
public readonly record struct CuDevicePtr(ulong Address)
{
    public static CuDevicePtr operator +(CuDevicePtr p, long bytes) => new(p.Address + (ulong)bytes);
}

/// <summary>
/// Thin typed bindings of the CUDA driver API (libcuda.so.1). The raw entry points return CuResult;
/// <see cref="Check"/> turns a failure into a <see cref="CudaException"/> naming the call.
/// </summary>
public static unsafe partial class CudaDriver
{
    private const string Lib = CudaLibraries.DriverName;

    static CudaDriver() => CudaLibraries.InstallResolver();

    /// <summary>Throws <see cref="CudaException"/> unless <paramref name="result"/> is success.</summary>
    public static void Check(CuResult result, [CallerArgumentExpression(nameof(result))] string call = "")
    {
        if (result == CuResult.Success) return;
        string name = "CUDA_ERROR_" + (int)result, text = "unknown error";
        byte* p = null;
        if (cuGetErrorName(result, &p) == CuResult.Success && p != null) name = Marshal.PtrToStringUTF8((nint)p)!;
        if (cuGetErrorString(result, &p) == CuResult.Success && p != null) text = Marshal.PtrToStringUTF8((nint)p)!;
        int paren = call.IndexOf('(');
        throw new CudaException(paren > 0 ? call[..paren] : call, (int)result, name, text);
    }

    [LibraryImport(Lib)] public static partial CuResult cuInit(uint flags);
    [LibraryImport(Lib)] public static partial CuResult cuDriverGetVersion(out int version);
    [LibraryImport(Lib)] public static partial CuResult cuGetErrorName(CuResult error, byte** name);
    [LibraryImport(Lib)] public static partial CuResult cuGetErrorString(CuResult error, byte** text);

    [LibraryImport(Lib)] public static partial CuResult cuDeviceGetCount(out int count);
    [LibraryImport(Lib)] public static partial CuResult cuDeviceGet(out CuDevice device, int ordinal);
    [LibraryImport(Lib)] public static partial CuResult cuDeviceGetName(byte* name, int length, CuDevice device);
    [LibraryImport(Lib)] public static partial CuResult cuDeviceGetAttribute(out int value, CuDeviceAttribute attribute, CuDevice device);
    [LibraryImport(Lib, EntryPoint = "cuDeviceTotalMem_v2")] public static partial CuResult cuDeviceTotalMem(out nuint bytes, CuDevice device);
    [LibraryImport(Lib, EntryPoint = "cuMemGetInfo_v2")] public static partial CuResult cuMemGetInfo(out nuint free, out nuint total);

    [LibraryImport(Lib)] public static partial CuResult cuDevicePrimaryCtxRetain(out CuContext context, CuDevice device);
    [LibraryImport(Lib, EntryPoint = "cuDevicePrimaryCtxRelease_v2")] public static partial CuResult cuDevicePrimaryCtxRelease(CuDevice device);
    [LibraryImport(Lib)] public static partial CuResult cuCtxSetCurrent(CuContext context);

    [LibraryImport(Lib, EntryPoint = "cuMemAlloc_v2")] public static partial CuResult cuMemAlloc(out CuDevicePtr ptr, nuint bytes);
    [LibraryImport(Lib, EntryPoint = "cuMemFree_v2")] public static partial CuResult cuMemFree(CuDevicePtr ptr);
    [LibraryImport(Lib, EntryPoint = "cuMemcpyHtoDAsync_v2")] public static partial CuResult cuMemcpyHtoDAsync(CuDevicePtr dst, void* src, nuint bytes, CuStream stream);
    [LibraryImport(Lib, EntryPoint = "cuMemcpyDtoHAsync_v2")] public static partial CuResult cuMemcpyDtoHAsync(void* dst, CuDevicePtr src, nuint bytes, CuStream stream);
    [LibraryImport(Lib, EntryPoint = "cuMemcpyDtoDAsync_v2")] public static partial CuResult cuMemcpyDtoDAsync(CuDevicePtr dst, CuDevicePtr src, nuint bytes, CuStream stream);
    [LibraryImport(Lib)] public static partial CuResult cuMemsetD8Async(CuDevicePtr dst, byte value, nuint count, CuStream stream);
    [LibraryImport(Lib)] public static partial CuResult cuMemsetD32Async(CuDevicePtr dst, uint value, nuint count, CuStream stream);

    [LibraryImport(Lib)] public static partial CuResult cuStreamCreate(out CuStream stream, uint flags);
    [LibraryImport(Lib)] public static partial CuResult cuStreamSynchronize(CuStream stream);
    [LibraryImport(Lib, EntryPoint = "cuStreamDestroy_v2")] public static partial CuResult cuStreamDestroy(CuStream stream);

    [LibraryImport(Lib)] public static partial CuResult cuEventCreate(out CuEvent evt, uint flags);
    [LibraryImport(Lib)] public static partial CuResult cuEventRecord(CuEvent evt, CuStream stream);
    [LibraryImport(Lib)] public static partial CuResult cuEventSynchronize(CuEvent evt);
    [LibraryImport(Lib)] public static partial CuResult cuEventElapsedTime(out float milliseconds, CuEvent start, CuEvent end);
    [LibraryImport(Lib, EntryPoint = "cuEventDestroy_v2")] public static partial CuResult cuEventDestroy(CuEvent evt);

    [LibraryImport(Lib)] public static partial CuResult cuModuleLoadData(out CuModule module, void* image);
    [LibraryImport(Lib)] public static partial CuResult cuModuleUnload(CuModule module);
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)] public static partial CuResult cuModuleGetFunction(out CuFunction function, CuModule module, string name);
    [LibraryImport(Lib)]
    public static partial CuResult cuLaunchKernel(CuFunction f, uint gridX, uint gridY, uint gridZ,
        uint blockX, uint blockY, uint blockZ, uint sharedMemBytes, CuStream stream, void** kernelParams, void** extra);

    /// <summary>The device's name as the driver reports it.</summary>
    public static string DeviceName(CuDevice device)
    {
        byte* buffer = stackalloc byte[256];
        Check(cuDeviceGetName(buffer, 256, device));
        return Marshal.PtrToStringUTF8((nint)buffer) ?? "unknown device";
    }

    public static int Attribute(CuDevice device, CuDeviceAttribute attribute)
    {
        Check(cuDeviceGetAttribute(out int value, attribute, device));
        return value;
    }
}
