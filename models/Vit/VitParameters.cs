using NativeSparsity.Engine.Backends;
using NativeSparsity.Engine.Optim;
using NativeSparsity.Engine.Random;
using NativeSparsity.Engine.Sparsity;
using NativeSparsity.Engine.Tensors;
using NativeSparsity.Models.Bert;
using NativeSparsity.Models.Transformer;

namespace NativeSparsity.Models.Vit;

/// <summary>
/// The flat parameter and gradient buffers of one ViT, laid out by <see cref="VitParameterLayout"/>;
/// every named tensor is a view into them.
/// </summary>
public sealed class VitParameters : FlatParameters
{
    public VitParameters(IBackend backend, VitParameterLayout layout) : base(backend, layout) => Layout = layout;

    public VitParameterLayout Layout { get; }
    public VitConfig Config => Layout.Config;

    /// <summary>A parameter viewed as a [rows, cols] matrix (rows = first dimension), as the model uses it.</summary>
    internal Tensor Matrix(Tensor buffer, string name)
    {
        var slot = Layout[name];
        int rows = slot.Shape.Length == 3 ? slot.Shape[0] * slot.Shape[1] : slot.Shape[0];
        return buffer.Slice(slot.Offset, rows, checked((int)(slot.Length / rows)));
    }

    /// <summary>A dense layer by prefix, its weight viewed as [out, in] (the patch projection's [c, C, p, p] as [c, C*p*p]).</summary>
    public Linear Linear(string prefix)
    {
        var w = Matrix(Values, prefix + ".weight");
        return new Linear(w, this[prefix + ".bias"], Matrix(Grads, prefix + ".weight"), Grad(prefix + ".bias"), w.Dim(1), w.Dim(0));
    }

    /// <summary>Layer <paramref name="layer"/>'s weights (pre-LN: layernorm_before, then layernorm_after).</summary>
    internal TransformerLayerWeights LayerWeights(int layer)
    {
        string pre = VitParameterLayout.LayerPrefix(layer);
        var qkv = TransformerLayerWeights.FusedQkv(Values, Grads, Layout[pre + "attention.attention.query.weight"].Offset,
                                                   Layout[pre + "attention.attention.query.bias"].Offset, Config.HiddenSize);
        return new TransformerLayerWeights(qkv, Linear(pre + "attention.output.dense"), Linear(pre + "intermediate.dense"),
                                           Linear(pre + "output.dense"), LayerNorm(pre + "layernorm_before"), LayerNorm(pre + "layernorm_after"));
    }

    /// <summary>
    /// ViT initialisation as BERT's: every weight, [CLS], position embeddings and the mask token
    /// N(0, initializer_range); biases 0; LayerNorm gamma 1. (HF ViT draws from a normal truncated
    /// at 2 std and zeroes the mask token; SimMIM draws the mask token like the rest, as here.)
    /// Philox (seed, stream = parameter index), so any backend gives the same model for a seed.
    /// </summary>
    public void Initialize(ulong seed)
    {
        var host = new float[Layout.TotalLength];
        float std = Config.InitializerRange;
        for (int i = 0; i < Layout.Slots.Count; i++)
        {
            var slot = Layout.Slots[i];
            var span = host.AsSpan(checked((int)slot.Offset), checked((int)slot.Length));
            if (IsLayerNorm(slot.Name)) { if (slot.Name.EndsWith(".weight", StringComparison.Ordinal)) span.Fill(1f); }
            else if (!slot.Name.EndsWith(".bias", StringComparison.Ordinal)) Philox.FillNormal(span, seed, (ulong)i, 0, 0f, std);
        }
        Backend.CopyFromHost<float>(host, Values);
    }

    private static bool IsLayerNorm(string name) => name.Contains("layernorm", StringComparison.Ordinal);
}
