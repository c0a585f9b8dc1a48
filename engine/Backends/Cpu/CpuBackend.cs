using System.Runtime.InteropServices;
using NativeSparsity.Engine.Tensors;

namespace NativeSparsity.Engine.Backends.Cpu;

/// <summary>
/// The reference backend: runs everywhere, vectorised and multithreaded, and bitwise reproducible
/// for a given input whatever the thread count (see <see cref="CpuParallel"/>). One file per op
/// family, each a part of this class; the CUDA kernel of the same family has the same file name.
/// </summary>
public sealed unsafe partial class CpuBackend : IBackend, ISparseLinearOps
{
    public CpuBackend(int threads = 0)
    {
        Threads = threads > 0 ? threads : Environment.ProcessorCount;
        CpuParallel.MaxThreads = Threads;
    }

    public int Threads { get; }
    public string Name => $"cpu ({Threads} threads)";

    public Tensor Allocate(DType dtype, params int[] shape)
    {
        long count = 1;
        foreach (int d in shape)
        {
            if (d < 0) throw new ArgumentException($"negative dimension in shape [{string.Join(", ", shape)}]", nameof(shape));
            count *= d;
        }
        return new Tensor(new CpuStorage(this, count * dtype.SizeInBytes()), dtype, 0, shape);
    }

    public void CopyFromHost<T>(ReadOnlySpan<T> src, Tensor dst) where T : unmanaged
    {
        CheckHostCopy<T>(dst, src.Length);
        src.CopyTo(new Span<T>(dst.Ptr<T>(), src.Length));
    }

    public void CopyToHost<T>(Tensor src, Span<T> dst) where T : unmanaged
    {
        CheckHostCopy<T>(src, dst.Length);
        new ReadOnlySpan<T>(src.Ptr<T>(), dst.Length).CopyTo(dst);
    }

    private static void CheckHostCopy<T>(Tensor t, int hostLength) where T : unmanaged
    {
        if (sizeof(T) != t.DType.SizeInBytes())
            throw new ArgumentException($"{t}: host element type {typeof(T).Name} does not match dtype {t.DType}");
        if (hostLength != t.Length)
            throw new ArgumentException($"{t}: host buffer holds {hostLength} elements, tensor holds {t.Length}");
    }

    public void Synchronize() { }

    public void Copy(Tensor src, Tensor dst)
    {
        if (src.DType != dst.DType || src.Length != dst.Length)
            throw new ArgumentException($"copy from {src} to {dst}: dtype and length must match");
        long bytes = src.Length * src.DType.SizeInBytes();
        byte* s = src.Ptr<byte>(), d = dst.Ptr<byte>();
        // Overlapping views need one memmove; disjoint large ones are split for memory bandwidth.
        bool disjoint = s + bytes <= d || d + bytes <= s;
        if (!disjoint || bytes < 2 * CopyChunkBytes)
        {
            Buffer.MemoryCopy(s, d, bytes, bytes);
            return;
        }
        CpuParallel.ForRange(bytes, CopyChunkBytes, (start, end) =>
            Buffer.MemoryCopy(s + start, d + start, end - start, end - start));
    }

    private const int CopyChunkBytes = 1 << 20;

    public void Fill(Tensor dst, float value)
    {
        float* p = dst.F32();
        CpuParallel.ForRange(dst.Length, 1 << 16, (start, end) =>
            new Span<float>(p + start, (int)(end - start)).Fill(value));
    }

    public void Dispose() { }
}
