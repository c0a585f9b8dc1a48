using System.Runtime.InteropServices;
using NativeSparsity.Engine.Backends.Cuda.Native;
using NativeSparsity.Engine.Tensors;

namespace NativeSparsity.Engine.Backends.Cuda;

/// <summary>Why the CUDA backend cannot start: the library, device or call that is missing.</summary>
public sealed class CudaUnavailableException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// The NVIDIA GPU backend: every op is a kernel from kernels/*.cu compiled by NVRTC for this device,
/// GEMMs are cuBLAS. All work is queued on one stream; nothing waits inside an op except
/// <see cref="CopyToHost{T}"/> and <see cref="Synchronize"/>. Errors a kernel detects (an embedding id
/// or a target out of range) are reported there too, since a kernel cannot throw. The op methods,
/// one file per family like the CPU backend, are in CudaOps.cs.
/// GEMMs use TF32 tensor cores unless <see cref="StrictFp32"/> is set (or NSPARSE_STRICT_FP32=1).
/// </summary>
public sealed unsafe partial class CudaBackend : IBackend
{
    public const string StrictFp32Variable = "NSPARSE_STRICT_FP32";

    private readonly CuDevice _device;
    private readonly CuContext _context;
    private readonly CuStream _stream;
    private readonly CublasHandle _cublas;
    private readonly DeviceAllocator _allocator = new();
    private readonly KernelCompiler _compiler;
    private readonly Dictionary<string, CuModule> _modules = new(StringComparer.Ordinal);
    private readonly Dictionary<string, CuFunction> _functions = new(StringComparer.Ordinal);
    private readonly CuDevicePtr _status;          // int: first error code a kernel raised
    private readonly CuDevicePtr _reducePartials;  // double[ReduceBlocks]
    private bool _strictFp32;
    private bool _disposed;

    [ThreadStatic] private static nint _currentContext;

    /// <summary>Number of blocks of the fixed-shape reductions in reduction.cu (REDUCE_BLOCKS).</summary>
    internal const int ReduceBlocks = 256;

    private CudaBackend(int ordinal, string? kernelCacheDirectory)
    {
        CudaDriver.Check(CudaDriver.cuDeviceGet(out _device, ordinal));
        DeviceName = CudaDriver.DeviceName(_device);
        ComputeMajor = CudaDriver.Attribute(_device, CuDeviceAttribute.ComputeCapabilityMajor);
        ComputeMinor = CudaDriver.Attribute(_device, CuDeviceAttribute.ComputeCapabilityMinor);
        MultiprocessorCount = CudaDriver.Attribute(_device, CuDeviceAttribute.MultiprocessorCount);
        CudaDriver.Check(CudaDriver.cuDeviceTotalMem(out nuint total, _device));
        TotalMemory = (long)total;
        Ordinal = ordinal;

        CudaDriver.Check(CudaDriver.cuDevicePrimaryCtxRetain(out _context, _device));
        MakeCurrent();
        CudaDriver.Check(CudaDriver.cuStreamCreate(out _stream, 1 /* CU_STREAM_NON_BLOCKING */));
        CudaLibraries.Load(CudaLibrary.Cublas);
        Cublas.Check(Cublas.cublasCreate(out _cublas));
        Cublas.Check(Cublas.cublasSetStream(_cublas, _stream));
        StrictFp32 = Environment.GetEnvironmentVariable(StrictFp32Variable) == "1";

        _compiler = new KernelCompiler(ComputeMajor, ComputeMinor, kernelCacheDirectory);
        _status = _allocator.Allocate(4, out _);
        _reducePartials = _allocator.Allocate(ReduceBlocks * sizeof(double), out _);
        CudaDriver.Check(CudaDriver.cuMemsetD32Async(_status, 0, 1, _stream));
    }

    /// <summary>
    /// Opens device <paramref name="ordinal"/>, or throws <see cref="CudaUnavailableException"/> saying
    /// what is missing: the driver library, a device, NVRTC or cuBLAS.
    /// </summary>
    public static CudaBackend Create(int ordinal = 0, string? kernelCacheDirectory = null)
    {
        if (!OperatingSystem.IsLinux())
            throw new CudaUnavailableException("the CUDA backend supports Linux only");
        foreach (var lib in new[] { CudaLibrary.Driver, CudaLibrary.Nvrtc, CudaLibrary.Cublas })
            if (!CudaLibraries.TryLoad(lib, out _, out string? error))
                throw new CudaUnavailableException(error!);
        var init = CudaDriver.cuInit(0);
        if (init != CuResult.Success)
        {
            try { CudaDriver.Check(init); }
            catch (CudaException e) { throw new CudaUnavailableException($"the NVIDIA driver did not start: {e.Message}", e); }
        }
        CudaDriver.Check(CudaDriver.cuDeviceGetCount(out int count));
        if (count == 0) throw new CudaUnavailableException("no CUDA device found (the driver is installed but reports 0 GPUs)");
        if (ordinal < 0 || ordinal >= count)
            throw new CudaUnavailableException($"CUDA device {ordinal} requested, but only {count} device(s) exist");
        return new CudaBackend(ordinal, kernelCacheDirectory);
    }

    public int Ordinal { get; }
    public string DeviceName { get; }
    public int ComputeMajor { get; }
    public int ComputeMinor { get; }
    public int MultiprocessorCount { get; }
    public long TotalMemory { get; }
    public DeviceAllocator Allocator => _allocator;
    public KernelCompiler Compiler => _compiler;
    internal CuStream Stream => _stream;

    public string Name => $"cuda:{Ordinal} ({DeviceName}, sm_{ComputeMajor}{ComputeMinor}, {TotalMemory / (1L << 30)} GiB)";

    /// <summary>True: GEMMs in full fp32. False (default): TF32 tensor cores, about 1e-3 relative error.</summary>
    public bool StrictFp32
    {
        get => _strictFp32;
        set
        {
            MakeCurrent();
            Cublas.Check(Cublas.cublasSetMathMode(_cublas, value ? CublasMath.Default : CublasMath.Tf32TensorOp));
            _strictFp32 = value;
        }
    }

    internal void MakeCurrent()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_currentContext == _context.Handle) return;
        CudaDriver.Check(CudaDriver.cuCtxSetCurrent(_context));
        _currentContext = _context.Handle;
    }

    // ---- memory ----------------------------------------------------------------------------

    public Tensor Allocate(DType dtype, params int[] shape)
    {
        MakeCurrent();
        long count = 1;
        foreach (int d in shape)
        {
            if (d < 0) throw new ArgumentException($"negative dimension in shape [{string.Join(", ", shape)}]", nameof(shape));
            count *= d;
        }
        long bytes = count * dtype.SizeInBytes();
        var storage = new CudaStorage(this, _allocator, bytes);
        if (bytes > 0) CudaDriver.Check(CudaDriver.cuMemsetD8Async(storage.Pointer, 0, (nuint)bytes, _stream));
        return new Tensor(storage, dtype, 0, shape);
    }

    public void CopyFromHost<T>(ReadOnlySpan<T> src, Tensor dst) where T : unmanaged
    {
        MakeCurrent();
        CheckHostCopy<T>(dst, src.Length);
        if (src.Length == 0) return;
        // From pageable memory the driver stages the data before returning, so src may be reused at once.
        fixed (T* p = src)
            CudaDriver.Check(CudaDriver.cuMemcpyHtoDAsync(Ptr(dst), p, (nuint)((long)src.Length * sizeof(T)), _stream));
    }

    public void CopyToHost<T>(Tensor src, Span<T> dst) where T : unmanaged
    {
        MakeCurrent();
        CheckHostCopy<T>(src, dst.Length);
        if (dst.Length > 0)
            fixed (T* p = dst)
                CudaDriver.Check(CudaDriver.cuMemcpyDtoHAsync(p, Ptr(src), (nuint)((long)dst.Length * sizeof(T)), _stream));
        Synchronize();
    }

    private static void CheckHostCopy<T>(Tensor t, int hostLength) where T : unmanaged
    {
        if (sizeof(T) != t.DType.SizeInBytes())
            throw new ArgumentException($"{t}: host element type {typeof(T).Name} does not match dtype {t.DType}");
        if (hostLength != t.Length)
            throw new ArgumentException($"{t}: host buffer holds {hostLength} elements, tensor holds {t.Length}");
    }

    /// <summary>Waits for the stream, then reports the first error a kernel raised since the last check.</summary>
    public void Synchronize()
    {
        MakeCurrent();
        CudaDriver.Check(CudaDriver.cuStreamSynchronize(_stream));
        int status;
        CudaDriver.Check(CudaDriver.cuMemcpyDtoHAsync(&status, _status, 4, _stream));
        CudaDriver.Check(CudaDriver.cuStreamSynchronize(_stream));
        if (status == 0) return;
        CudaDriver.Check(CudaDriver.cuMemsetD32Async(_status, 0, 1, _stream));
        throw status switch
        {
            1 => new ArgumentOutOfRangeException("ids", "EmbeddingForward: a token id was outside [0, vocab) (reported by the GPU at synchronisation)"),
            2 => new ArgumentOutOfRangeException("targets", "CrossEntropy: a target was outside [0, classes) and not the ignore index (reported by the GPU at synchronisation)"),
            _ => new InvalidOperationException($"a CUDA kernel reported error code {status}"),
        };
    }

    public void Copy(Tensor src, Tensor dst)
    {
        MakeCurrent();
        if (src.DType != dst.DType || src.Length != dst.Length)
            throw new ArgumentException($"copy from {src} to {dst}: dtype and length must match");
        long bytes = src.Length * src.DType.SizeInBytes();
        if (bytes > 0) CudaDriver.Check(CudaDriver.cuMemcpyDtoDAsync(Ptr(dst), Ptr(src), (nuint)bytes, _stream));
    }

    public void Fill(Tensor dst, float value)
    {
        MakeCurrent();
        Expect(dst, DType.F32, nameof(dst));
        if (dst.Length > 0)
            CudaDriver.Check(CudaDriver.cuMemsetD32Async(Ptr(dst), BitConverter.SingleToUInt32Bits(value), (nuint)dst.Length, _stream));
    }

    // ---- helpers -------------------------------------------------------------------------

    /// <summary>Device address of a tensor that must live on this backend.</summary>
    private CuDevicePtr Ptr(Tensor t)
    {
        if (!ReferenceEquals(t.Backend, this))
            throw new ArgumentException($"{t} belongs to backend {t.Backend.Name}, not {Name}");
        return t.DevicePtr();
    }

    private static void Expect(Tensor t, DType dtype, string name)
    {
        if (t.DType != dtype) throw new ArgumentException($"{name}: {t} has dtype {t.DType}, expected {dtype}");
    }

    private static void ExpectLength(Tensor t, long count, string name)
    {
        if (t.Length < count) throw new ArgumentException($"{name}: {t} holds {t.Length} elements, the op needs {count}");
    }

    /// <summary>A temporary device block for one op; freeing right after the launch is safe (one stream).</summary>
    private CuDevicePtr Scratch(long bytes, out long reserved) => _allocator.Allocate(bytes, out reserved);

    internal CuFunction Function(string kernelFile, string kernel)
    {
        string key = kernelFile + ":" + kernel;
        if (_functions.TryGetValue(key, out CuFunction f)) return f;
        if (!_modules.TryGetValue(kernelFile, out CuModule module))
        {
            byte[] image = _compiler.Image(kernelFile);
            fixed (byte* p = image) CudaDriver.Check(CudaDriver.cuModuleLoadData(out module, p));
            _modules[kernelFile] = module;
        }
        CudaDriver.Check(CudaDriver.cuModuleGetFunction(out f, module, kernel));
        _functions[key] = f;
        return f;
    }

    /// <summary>One kernel argument: every parameter of our kernels fits 8 bytes (little-endian slot).</summary>
    internal readonly struct Arg
    {
        public readonly ulong Bits;
        public readonly KernelCompiler.ParameterKind Kind;
        private Arg(ulong bits, KernelCompiler.ParameterKind kind) { Bits = bits; Kind = kind; }
        public static Arg Ptr(CuDevicePtr p) => new(p.Address, KernelCompiler.ParameterKind.Pointer);
        public static Arg Null => new(0, KernelCompiler.ParameterKind.Pointer);
        public static Arg I32(int v) => new((uint)v, KernelCompiler.ParameterKind.Int32);
        public static Arg I64(long v) => new((ulong)v, KernelCompiler.ParameterKind.Int64);
        public static Arg U64(ulong v) => new(v, KernelCompiler.ParameterKind.Int64);
        public static Arg F32(float v) => new(BitConverter.SingleToUInt32Bits(v), KernelCompiler.ParameterKind.Float32);
    }

    private readonly Dictionary<string, Dictionary<string, KernelCompiler.ParameterKind[]>> _signatures = new(StringComparer.Ordinal);
    private readonly HashSet<string> _checkedLaunches = new(StringComparer.Ordinal);

    /// <summary>On the first launch of each kernel, checks the arguments against the kernel's parameters.</summary>
    private void CheckArguments(string kernelFile, string kernel, ReadOnlySpan<Arg> args)
    {
        string key = kernelFile + ":" + kernel;
        if (_checkedLaunches.Contains(key)) return;
        if (!_signatures.TryGetValue(kernelFile, out var signatures))
            _signatures[kernelFile] = signatures = KernelCompiler.Signatures(KernelSources.Read(kernelFile));
        if (!signatures.TryGetValue(kernel, out var kinds))
            throw new InvalidOperationException($"kernels/{kernelFile} has no kernel {kernel}");
        var given = args.ToArray().Select(a => a.Kind).ToArray();
        if (!given.SequenceEqual(kinds))
            throw new InvalidOperationException(
                $"launch of {kernel} passes ({string.Join(", ", given)}) but kernels/{kernelFile} declares ({string.Join(", ", kinds)})");
        _checkedLaunches.Add(key);
    }

    /// <summary>Queues a kernel on the stream. Grid and block are (x, y); z is 1.</summary>
    internal void Launch(string kernelFile, string kernel, (uint X, uint Y) grid, (uint X, uint Y) block, params ReadOnlySpan<Arg> args)
    {
        CheckArguments(kernelFile, kernel, args);
        CuFunction f = Function(kernelFile, kernel);
        ulong* slots = stackalloc ulong[Math.Max(args.Length, 1)];
        void** pointers = stackalloc void*[Math.Max(args.Length, 1)];
        for (int i = 0; i < args.Length; i++)
        {
            slots[i] = args[i].Bits;
            pointers[i] = slots + i;
        }
        CudaDriver.Check(CudaDriver.cuLaunchKernel(f, grid.X, grid.Y, 1, block.X, block.Y, 1, 0, _stream, pointers, null));
    }

    /// <summary>Blocks for a grid-stride loop over n items: enough to fill the device, never more than needed.</summary>
    private uint GridFor(long n, int threads = 256)
    {
        long blocks = (n + threads - 1) / threads;
        return (uint)Math.Clamp(blocks, 1, (long)MultiprocessorCount * 16);
    }

    /// <summary>
    /// GPU time of the work <paramref name="work"/> queues, measured with CUDA events on the stream
    /// (host overhead between launches excluded); waits for the work to finish.
    /// </summary>
    public double ElapsedMilliseconds(Action work)
    {
        MakeCurrent();
        if (_timerStart.Handle == 0)
        {
            CudaDriver.Check(CudaDriver.cuEventCreate(out _timerStart, 0));
            CudaDriver.Check(CudaDriver.cuEventCreate(out _timerEnd, 0));
        }
        CudaDriver.Check(CudaDriver.cuEventRecord(_timerStart, _stream));
        work();
        CudaDriver.Check(CudaDriver.cuEventRecord(_timerEnd, _stream));
        CudaDriver.Check(CudaDriver.cuEventSynchronize(_timerEnd));
        CudaDriver.Check(CudaDriver.cuEventElapsedTime(out float ms, _timerStart, _timerEnd));
        return ms;
    }

    private CuEvent _timerStart, _timerEnd;

    public void Dispose()
    {
        if (_disposed) return;
        MakeCurrent();
        CudaDriver.cuStreamSynchronize(_stream);
        foreach (var module in _modules.Values) CudaDriver.cuModuleUnload(module);
        _modules.Clear();
        _functions.Clear();
        if (_timerStart.Handle != 0) { CudaDriver.cuEventDestroy(_timerStart); CudaDriver.cuEventDestroy(_timerEnd); }
        _allocator.Free(_status, DeviceAllocator.SizeClass(4));
        _allocator.Free(_reducePartials, DeviceAllocator.SizeClass(ReduceBlocks * sizeof(double)));
        _allocator.Dispose();
        Cublas.cublasDestroy(_cublas);
        CudaDriver.cuStreamDestroy(_stream);
        CudaDriver.cuDevicePrimaryCtxRelease(_device);
        _currentContext = 0;
        _disposed = true;
        GC.SuppressFinalize(this);
    }
}
