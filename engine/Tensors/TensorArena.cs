using NativeSparsity.Engine.Backends;

namespace NativeSparsity.Engine.Tensors;

/// <summary>
/// Owns a set of tensors allocated together (a model's activations, an optimizer's moments) and
/// frees them together. Storages have no finalizers: ops hand raw pointers to worker threads, and
/// a finalizer could free memory that a running op still uses once the GC sees the tensor as
/// dead. Lifetimes are therefore explicit, as they must be for device memory anyway.
/// </summary>
public sealed class TensorArena(IBackend backend) : IDisposable
{
    private readonly List<Tensor> _owned = new();

    public IBackend Backend { get; } = backend;

    public Tensor Allocate(DType dtype, params int[] shape)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var t = Backend.Allocate(dtype, shape);
        _owned.Add(t);
        return t;
    }

    public Tensor F32(params int[] shape) => Allocate(DType.F32, shape);
    public Tensor I32(params int[] shape) => Allocate(DType.I32, shape);

    /// <summary>Bytes held by the arena's tensors.</summary>
    public long Bytes => _owned.Sum(t => t.Storage.ByteLength);

    private bool _disposed;

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        foreach (var t in _owned) t.Storage.Dispose();
        _owned.Clear();
    }
}
