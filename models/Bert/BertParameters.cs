using NativeSparsity.Engine.Backends;
using NativeSparsity.Engine.Optim;
using NativeSparsity.Engine.Random;
using NativeSparsity.Engine.Sparsity;
using NativeSparsity.Engine.Tensors;

using NativeSparsity.Models.Transformer;

namespace NativeSparsity.Models.Bert;

/// <summary>
/// The flat parameter and gradient buffers of one BERT, laid out by <see cref="BertParameterLayout"/>;
/// every named tensor is a view into them.
/// </summary>
public sealed class BertParameters : FlatParameters
{
    public BertParameters(IBackend backend, BertParameterLayout layout) : base(backend, layout) => Layout = layout;

    public BertParameterLayout Layout { get; }
    public BertConfig Config => Layout.Config;

    public Linear Linear(string prefix, bool bias = true)
    {
        var w = this[prefix + ".weight"];
        return new Linear(w, bias ? this[prefix + ".bias"] : null, Grad(prefix + ".weight"),
                          bias ? Grad(prefix + ".bias") : null, w.Dim(1), w.Dim(0));
    }

    /// <summary>
    /// BERT's initialisation: matrices and embeddings N(0, initializer_range), biases 0, LayerNorm
    /// gamma 1. Draws come from Philox (seed, stream = parameter index), so any backend gives the
    /// same model for a seed.
    /// </summary>
    public void Initialize(ulong seed)
    {
        var host = new float[Layout.TotalLength];
        float std = Config.InitializerRange;
        for (int i = 0; i < Layout.Slots.Count; i++)
        {
            var slot = Layout.Slots[i];
            var span = host.AsSpan(checked((int)slot.Offset), checked((int)slot.Length));
            if (slot.Name.EndsWith("LayerNorm.weight", StringComparison.Ordinal)) span.Fill(1f);
            else if (slot.Shape.Length == 2) Philox.FillNormal(span, seed, (ulong)i, 0, 0f, std);
            // biases stay 0
        }
        Backend.CopyFromHost<float>(host, Values);
    }
}
