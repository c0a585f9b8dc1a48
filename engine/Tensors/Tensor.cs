using NativeSparsity.Engine.Backends;

namespace NativeSparsity.Engine.Tensors;

/// <summary>Element types a tensor can hold. Only F32 is computed on today; the others carry
/// token ids (I32), masks (U8) and, later, half-precision weights (BF16).</summary>
public enum DType : byte { F32, BF16, I32, U8 }

public static class DTypeExtensions
{
    public static int SizeInBytes(this DType dtype) => dtype switch
    {
        DType.F32 or DType.I32 => 4,
        DType.BF16 => 2,
        DType.U8 => 1,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "unknown dtype"),
    };

    /// <summary>The safetensors spelling of the dtype.</summary>
    public static string SafetensorsName(this DType dtype) => dtype switch
    {
        DType.F32 => "F32", DType.BF16 => "BF16", DType.I32 => "I32", DType.U8 => "U8",
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "unknown dtype"),
    };
}

/// <summary>
/// A block of memory owned by one backend. Tensors are views into storages, so a flat parameter
/// buffer is one storage and every named weight is a view with an element offset into it.
/// </summary>
public abstract class Storage : IDisposable
{
    protected Storage(IBackend backend, long byteLength)
    {
        Backend = backend;
        ByteLength = byteLength;
    }

    public IBackend Backend { get; }
    public long ByteLength { get; }
    public bool IsDisposed { get; private set; }

    public void Dispose()
    {
        if (IsDisposed) return;
        IsDisposed = true;
        Release();
        GC.SuppressFinalize(this);
    }

    protected abstract void Release();
}

/// <summary>
/// A dense, contiguous, row-major view into a <see cref="Storage"/>. Transposes are expressed by
/// the ops (GEMM flags), not by strides, so every tensor is a plain run of elements. The view's
/// shape is informational for the ops; lengths are what they check.
/// </summary>
public sealed class Tensor
{
    private readonly int[] _shape;

    public Tensor(Storage storage, DType dtype, long offset, params int[] shape)
    {
        ArgumentNullException.ThrowIfNull(storage);
        if (offset < 0) throw new ArgumentOutOfRangeException(nameof(offset), offset, "offset must be non-negative");
        _shape = (int[])shape.Clone();
        long length = 1;
        foreach (int d in _shape)
        {
            if (d < 0) throw new ArgumentException($"negative dimension in shape [{string.Join(", ", shape)}]", nameof(shape));
            length *= d;
        }
        long endByte = (offset + length) * dtype.SizeInBytes();
        if (endByte > storage.ByteLength)
            throw new ArgumentException(
                $"view of {length} {dtype} elements at offset {offset} ends at byte {endByte}, past the storage's {storage.ByteLength} bytes");
        Storage = storage;
        DType = dtype;
        Offset = offset;
        Length = length;
    }

    public Storage Storage { get; }
    public IBackend Backend => Storage.Backend;
    public DType DType { get; }

    /// <summary>Offset of the first element, counted in elements of <see cref="DType"/>.</summary>
    public long Offset { get; }

    public long Length { get; }
    public ReadOnlySpan<int> Shape => _shape;
    public int Rank => _shape.Length;
    public int Dim(int axis) => _shape[axis < 0 ? _shape.Length + axis : axis];
    public long ByteOffset => Offset * DType.SizeInBytes();

    /// <summary>A contiguous sub-view starting <paramref name="elementOffset"/> elements into this one.</summary>
    public Tensor Slice(long elementOffset, params int[] shape)
    {
        var view = new Tensor(Storage, DType, Offset + elementOffset, shape);
        if (elementOffset < 0 || elementOffset + view.Length > Length)
            throw new ArgumentException(
                $"slice [{elementOffset}, {elementOffset + view.Length}) lies outside a tensor of {Length} elements");
        return view;
    }

    /// <summary>The same elements with another shape of equal element count.</summary>
    public Tensor Reshape(params int[] shape)
    {
        var view = new Tensor(Storage, DType, Offset, shape);
        if (view.Length != Length)
            throw new ArgumentException(
                $"cannot reshape [{string.Join(", ", _shape)}] ({Length} elements) to [{string.Join(", ", shape)}] ({view.Length} elements)");
        return view;
    }

    public override string ToString() => $"Tensor<{DType}>[{string.Join(", ", _shape)}] on {Backend.Name} @ {Offset}";
}
