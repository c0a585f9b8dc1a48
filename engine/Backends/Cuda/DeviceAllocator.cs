using NativeSparsity.Engine.Backends.Cuda.Native;

namespace NativeSparsity.Engine.Backends.Cuda;

/// <summary>
/// A caching device allocator: freed blocks go to a free list of their size class and the next
/// request of that class reuses one, so a steady-state training step (which allocates and frees
/// the same sizes each time) makes no cuMemAlloc call. Size classes are 512-byte multiples up to
/// 1 MiB and eight classes per power of two above (at most 12.5 % waste). Everything runs on one
/// stream, so a block freed while kernels still use it may be handed out again at once: the new
/// owner's work is queued after the old owner's. When the device runs out of memory the cached
/// blocks are released and the allocation is retried once.
/// </summary>
public sealed class DeviceAllocator : IDisposable
{
    private readonly Lock _gate = new();
    private readonly Dictionary<long, Stack<CuDevicePtr>> _free = new();
    private bool _disposed;

    public long CachedBytes { get; private set; }
    public long LiveBytes { get; private set; }
    /// <summary>Number of cuMemAlloc calls made so far (a steady state stops increasing it).</summary>
    public long DeviceAllocations { get; private set; }

    public static long SizeClass(long bytes)
    {
        if (bytes <= 0) return 512;
        if (bytes <= 1 << 20) return (bytes + 511) & ~511L;
        int log = 63 - (int)long.LeadingZeroCount(bytes - 1);   // 2^log < bytes <= 2^(log+1)
        long step = 1L << (log - 3);                              // eight classes in that octave
        return (bytes + step - 1) / step * step;
    }

    /// <summary>A block of at least <paramref name="bytes"/> bytes; returns the class size actually reserved.</summary>
    public CuDevicePtr Allocate(long bytes, out long reserved)
    {
        reserved = SizeClass(bytes);
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_free.TryGetValue(reserved, out var stack) && stack.Count > 0)
            {
                CachedBytes -= reserved;
                LiveBytes += reserved;
                return stack.Pop();
            }
            var result = CudaDriver.cuMemAlloc(out CuDevicePtr ptr, (nuint)reserved);
            if (result != CuResult.Success && CachedBytes > 0)
            {
                ReleaseCachedLocked();
                result = CudaDriver.cuMemAlloc(out ptr, (nuint)reserved);
            }
            if (result != CuResult.Success)
            {
                try { CudaDriver.Check(result, "cuMemAlloc"); }
                catch (CudaException e)
                {
                    throw new OutOfMemoryException(
                        $"cuMemAlloc of {reserved:N0} bytes failed ({e.ErrorName}); {LiveBytes:N0} bytes are in use by live tensors", e);
                }
            }
            DeviceAllocations++;
            LiveBytes += reserved;
            return ptr;
        }
    }

    /// <summary>Returns a block to its free list. Safe from a finalizer: it makes no CUDA call.</summary>
    public void Free(CuDevicePtr ptr, long reserved)
    {
        lock (_gate)
        {
            if (_disposed) return;   // the context is gone; the driver freed everything with it
            if (!_free.TryGetValue(reserved, out var stack)) _free[reserved] = stack = new Stack<CuDevicePtr>();
            stack.Push(ptr);
            LiveBytes -= reserved;
            CachedBytes += reserved;
        }
    }

    /// <summary>Gives every cached block back to the driver (the caller's context must be current).</summary>
    public void ReleaseCached()
    {
        lock (_gate) ReleaseCachedLocked();
    }

    private void ReleaseCachedLocked()
    {
        foreach (var stack in _free.Values)
            while (stack.Count > 0) CudaDriver.cuMemFree(stack.Pop());
        CachedBytes = 0;
    }

    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed) return;
            ReleaseCachedLocked();
            _disposed = true;
        }
    }
}
