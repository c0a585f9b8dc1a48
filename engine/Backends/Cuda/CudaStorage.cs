using NativeSparsity.Engine.Backends.Cuda.Native;
using NativeSparsity.Engine.Tensors;

namespace NativeSparsity.Engine.Backends.Cuda;

/// <summary>Device memory from the backend's caching allocator; disposing returns it to the cache.</summary>
public sealed class CudaStorage : Storage
{
    private readonly DeviceAllocator _allocator;
    private readonly long _reserved;

    internal CudaStorage(CudaBackend backend, DeviceAllocator allocator, long byteLength) : base(backend, byteLength)
    {
        _allocator = allocator;
        Pointer = allocator.Allocate(byteLength, out _reserved);
    }

    public CuDevicePtr Pointer { get; }

    protected override void Release() => _allocator.Free(Pointer, _reserved);

    ~CudaStorage() => Dispose();
}

/// <summary>Device addresses of CUDA tensors, checked.</summary>
public static class CudaTensor
{
    public static CuDevicePtr DevicePtr(this Tensor t)
    {
        if (t.Storage is not CudaStorage s)
            throw new InvalidOperationException($"{t} is not in CUDA device memory");
        if (s.IsDisposed) throw new ObjectDisposedException($"storage of {t}");
        return s.Pointer + t.ByteOffset;
    }
}
