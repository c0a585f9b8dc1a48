using System.Runtime.InteropServices;
using NativeSparsity.Engine.Tensors;

namespace NativeSparsity.Engine.Backends.Cpu;

/// <summary>
/// Host memory aligned to 64 bytes (one AVX-512 vector, one cache line), zero-filled. Freed by
/// Dispose only (no finalizer: see <see cref="TensorArena"/>).
/// </summary>
public sealed unsafe class CpuStorage : Storage
{
    public const int Alignment = 64;

    internal CpuStorage(CpuBackend backend, long byteLength) : base(backend, byteLength)
    {
        nuint bytes = (nuint)Math.Max(byteLength, 1);
        Pointer = (byte*)NativeMemory.AlignedAlloc(bytes, Alignment);
        if (Pointer == null) throw new OutOfMemoryException($"could not allocate {byteLength} bytes of host memory");
        NativeMemory.Clear(Pointer, bytes);
        if (byteLength > 0) GC.AddMemoryPressure(byteLength);
    }

    public byte* Pointer { get; private set; }

    protected override void Release()
    {
        NativeMemory.AlignedFree(Pointer);
        Pointer = null;
        if (ByteLength > 0) GC.RemoveMemoryPressure(ByteLength);
    }
}

/// <summary>Typed access to CPU tensors. Everything here checks that the tensor lives on the CPU.</summary>
public static unsafe class CpuTensor
{
    public static T* Ptr<T>(this Tensor t) where T : unmanaged
    {
        if (t.Storage is not CpuStorage s)
            throw new InvalidOperationException($"{t} is not in host memory");
        if (s.IsDisposed) throw new ObjectDisposedException($"storage of {t}");
        return (T*)(s.Pointer + t.ByteOffset);
    }

    public static float* F32(this Tensor t) { Expect(t, DType.F32); return t.Ptr<float>(); }
    public static int* I32(this Tensor t) { Expect(t, DType.I32); return t.Ptr<int>(); }
    public static byte* U8(this Tensor t) { Expect(t, DType.U8); return t.Ptr<byte>(); }

    public static Span<float> F32Span(this Tensor t) => new(t.F32(), checked((int)t.Length));
    public static Span<int> I32Span(this Tensor t) => new(t.I32(), checked((int)t.Length));
    public static Span<byte> U8Span(this Tensor t) => new(t.U8(), checked((int)t.Length));

    public static void Expect(Tensor t, DType dtype)
    {
        if (t.DType != dtype) throw new ArgumentException($"{t}: expected dtype {dtype}");
    }

    /// <summary>Throws unless the tensor holds at least <paramref name="count"/> elements.</summary>
    public static void ExpectLength(Tensor t, long count, string name)
    {
        if (t.Length < count)
            throw new ArgumentException($"{name}: {t} holds {t.Length} elements, the op needs {count}");
    }
}
