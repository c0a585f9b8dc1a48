using NativeSparsity.Engine.Backends;
using NativeSparsity.Engine.Tensors;
using NativeSparsity.Models.Bert;

namespace NativeSparsity.Models.Transformer;

/// <summary>Where an encoder layer normalises: after each residual sum (BERT) or before each branch (ViT).</summary>
public enum LayerNormPlacement
{
    /// <summary>BERT: h = LN1(x + Attn(x)), out = LN2(h + FFN(h)).</summary>
    Post,
    /// <summary>ViT: y = x + Attn(LN1(x)), out = y + FFN(LN2(y)).</summary>
    Pre,
}

/// <summary>
/// The weights one encoder layer uses, supplied by the model so the layer knows no parameter names.
/// <paramref name="Qkv"/> is the fused [3C, C] projection (Q, K, V weights and biases adjacent).
/// <paramref name="Norm1"/> is the norm of the attention block (BERT attention.output.LayerNorm,
/// ViT layernorm_before), <paramref name="Norm2"/> that of the FFN block (BERT output.LayerNorm,
/// ViT layernorm_after).
/// </summary>
internal readonly record struct TransformerLayerWeights(
    Linear Qkv, Linear AttentionOutput, Linear Intermediate, Linear Output, LayerNormParams Norm1, LayerNormParams Norm2)
{
    /// <summary>A [3C, C] projection over the adjacent Q, K, V weights (and biases) starting at the query's offsets.</summary>
    public static Linear FusedQkv(Tensor values, Tensor grads, long queryWeightOffset, long queryBiasOffset, int hidden) => new(
        values.Slice(queryWeightOffset, 3 * hidden, hidden), values.Slice(queryBiasOffset, 3 * hidden),
        grads.Slice(queryWeightOffset, 3 * hidden, hidden), grads.Slice(queryBiasOffset, 3 * hidden), hidden, 3 * hidden);
}

/// <summary>Shape of one encoder layer.</summary>
internal readonly record struct TransformerLayerShape(int Batch, int Seq, int Hidden, int Heads, int Intermediate, float LayerNormEps, bool AttentionDropout)
{
    public int HeadDim => Hidden / Heads;
    public int Rows => Batch * Seq;
}

/// <summary>
/// One encoder layer over [batch*seq, hidden] rows: fused QKV projection, scaled dot-product
/// attention with an additive key mask, output projection, GELU FFN, two residuals and two
/// LayerNorms placed per <see cref="LayerNormPlacement"/>. Forward saves what the backward needs;
/// backward writes the input gradient and accumulates parameter gradients.
/// </summary>
internal sealed class TransformerEncoderLayer
{
    private readonly IBackend _be;
    private readonly LayerNormPlacement _placement;
    private readonly int _layer, _batch, _seq, _hidden, _heads, _headDim, _rows;
    private readonly Linear _qkv, _attnOut, _intermediate, _output;
    private readonly LayerNormParams _ln1, _ln2;
    private readonly float _eps;

    // Saved activations. Post: _sum1 = x + attn, _norm1 = LN1(_sum1) (also the FFN input), _sum2 = _norm1 + ffn.
    // Pre: _norm1 = LN1(x) (the attention input), _sum1 = x + attn, _ffnIn = LN2(_sum1); _sum2 unused.
    private readonly Tensor _input, _attnIn, _qkvAct, _q, _k, _v, _probs, _probsDropped, _ctx, _ctxMerged, _attnProj,
        _sum1, _norm1, _mean1, _rstd1, _ffnIn, _preGelu, _gelu, _ffnOut, _sum2, _mean2, _rstd2;

    // Gradient scratch shared by all layers (owned by the model).
    private readonly TransformerLayerScratch _g;

    public TransformerEncoderLayer(IBackend be, TransformerLayerWeights weights, LayerNormPlacement placement, int layer,
                                   TransformerLayerShape shape, Tensor input, Tensor output, TransformerLayerScratch scratch, TensorArena arena)
    {
        if (shape.Hidden % shape.Heads != 0)
            throw new ArgumentException($"hidden size {shape.Hidden} is not a multiple of the head count {shape.Heads}");
        _be = be; _placement = placement; _layer = layer; _batch = shape.Batch; _seq = shape.Seq;
        _hidden = shape.Hidden; _heads = shape.Heads; _headDim = shape.HeadDim;
        _rows = shape.Rows; _eps = shape.LayerNormEps; _g = scratch;
        _qkv = weights.Qkv; _attnOut = weights.AttentionOutput; _intermediate = weights.Intermediate; _output = weights.Output;
        _ln1 = weights.Norm1; _ln2 = weights.Norm2;

        int r = _rows, c = _hidden, batch = _batch, seq = _seq, scores = batch * _heads * seq * seq;
        Tensor F(params int[] s) => arena.Allocate(DType.F32, s);
        _input = input;
        _qkvAct = F(r, 3 * c);
        _q = F(batch, _heads, seq, _headDim); _k = F(batch, _heads, seq, _headDim); _v = F(batch, _heads, seq, _headDim);
        _probs = F(scores);
        _probsDropped = shape.AttentionDropout ? F(scores) : _probs;
        _ctx = F(batch, _heads, seq, _headDim); _ctxMerged = F(r, c); _attnProj = F(r, c);
        _sum1 = F(r, c); _norm1 = F(r, c); _mean1 = F(r); _rstd1 = F(r);
        _preGelu = F(r, shape.Intermediate); _gelu = F(r, shape.Intermediate); _ffnOut = F(r, c);
        _mean2 = F(r); _rstd2 = F(r);
        if (placement == LayerNormPlacement.Post) { _attnIn = input; _ffnIn = _norm1; _sum2 = F(r, c); }
        else { _attnIn = _norm1; _ffnIn = F(r, c); _sum2 = _ffnIn; }
        Output = output;
    }

    public Tensor Output { get; }
    public LayerNormPlacement Placement => _placement;

    private float Scale => 1f / MathF.Sqrt(_headDim);

    public void Forward(Tensor keyMask, in DropoutPlan dropout)
    {
        if (_placement == LayerNormPlacement.Pre)
            _be.LayerNormForward(_input, _ln1.Gamma, _ln1.Beta, _norm1, _mean1, _rstd1, _rows, _hidden, _eps);
        AttentionForward(keyMask, dropout);
        if (_placement == LayerNormPlacement.Post)
        {
            _be.AddLayerNormForward(_input, _attnProj, _sum1, _ln1.Gamma, _ln1.Beta, _norm1, _mean1, _rstd1, _rows, _hidden, _eps);
            FfnForward(dropout);
            _be.AddLayerNormForward(_norm1, _ffnOut, _sum2, _ln2.Gamma, _ln2.Beta, Output, _mean2, _rstd2, _rows, _hidden, _eps);
        }
        else
        {
            _be.Add(_input, _attnProj, _sum1);
            _be.LayerNormForward(_sum1, _ln2.Gamma, _ln2.Beta, _ffnIn, _mean2, _rstd2, _rows, _hidden, _eps);
            FfnForward(dropout);
            _be.Add(_sum1, _ffnOut, Output);
        }
    }

    private void AttentionForward(Tensor keyMask, in DropoutPlan dropout)
    {
        int b = _batch, t = _seq, h = _heads, d = _headDim, bh = b * h;
        long td = (long)t * d, tt = (long)t * t;
        _qkv.Forward(_be, _attnIn, _qkvAct, _rows);
        _be.SplitQkvHeads(_qkvAct, _q, _k, _v, b, t, h, d);
        _be.GemmStridedBatched(false, true, t, t, d, 1f, _q, d, td, _k, d, td, 0f, _probs, t, tt, bh);
        _be.AttentionSoftmaxForward(_probs, keyMask, _probs, Scale, b, h, t, t);
        if (!ReferenceEquals(_probsDropped, _probs))
            dropout.Apply(_be, _probs, _probsDropped, DropoutPlan.AttentionSite(_layer), attention: true);
        _be.GemmStridedBatched(false, false, t, d, t, 1f, _probsDropped, t, tt, _v, d, td, 0f, _ctx, d, td, bh);
        _be.MergeHeads(_ctx, _ctxMerged, b, t, h, d);
        _attnOut.Forward(_be, _ctxMerged, _attnProj, _rows);
        dropout.Apply(_be, _attnProj, _attnProj, DropoutPlan.AttentionOutputSite(_layer), attention: false);
    }

    private void FfnForward(in DropoutPlan dropout)
    {
        _intermediate.Forward(_be, _ffnIn, _preGelu, _rows);
        _be.GeluForward(_preGelu, _gelu);
        _output.Forward(_be, _gelu, _ffnOut, _rows);
        dropout.Apply(_be, _ffnOut, _ffnOut, DropoutPlan.FfnOutputSite(_layer), attention: false);
    }

    /// <summary>dOutput -> dInput (written; must not alias dOutput); parameter gradients accumulate.</summary>
    public void Backward(Tensor dOutput, Tensor dInput, in DropoutPlan dropout)
    {
        var g = _g;
        if (_placement == LayerNormPlacement.Post)
        {
            // Second residual block: dSum2 = LN2'(dOut); dH1 = dSum2 + FFN'(dSum2).
            _be.LayerNormBackward(dOutput, _sum2, _ln2.Gamma, _mean2, _rstd2, g.DSum2, _ln2.GammaGrad, _ln2.BetaGrad, _rows, _hidden);
            FfnBackward(g.DSum2, g.DH1, dropout);
            _be.Add(g.DH1, g.DSum2, g.DH1);
            // First residual block: dSum1 = LN1'(dH1); dIn = dSum1 + Attn'(dSum1).
            _be.LayerNormBackward(g.DH1, _sum1, _ln1.Gamma, _mean1, _rstd1, g.DSum1, _ln1.GammaGrad, _ln1.BetaGrad, _rows, _hidden);
            AttentionBackward(g.DSum1, dInput, dropout);
            _be.Add(dInput, g.DSum1, dInput);
        }
        else
        {
            // out = y + FFN(LN2(y)): dY = dOut + LN2'(FFN'(dOut)), kept in DSum1.
            FfnBackward(dOutput, g.DH1, dropout);
            _be.LayerNormBackward(g.DH1, _sum1, _ln2.Gamma, _mean2, _rstd2, g.DSum1, _ln2.GammaGrad, _ln2.BetaGrad, _rows, _hidden);
            _be.Add(g.DSum1, dOutput, g.DSum1);
            // y = x + Attn(LN1(x)): dIn = dY + LN1'(Attn'(dY)).
            AttentionBackward(g.DSum1, g.DSum2, dropout);
            _be.LayerNormBackward(g.DSum2, _input, _ln1.Gamma, _mean1, _rstd1, dInput, _ln1.GammaGrad, _ln1.BetaGrad, _rows, _hidden);
            _be.Add(dInput, g.DSum1, dInput);
        }
    }

    /// <summary>dFfnIn (written) from the gradient at the FFN branch output.</summary>
    private void FfnBackward(Tensor dBranchOut, Tensor dFfnIn, in DropoutPlan dropout)
    {
        var g = _g;
        dropout.Backward(_be, dBranchOut, g.DBranch, DropoutPlan.FfnOutputSite(_layer), attention: false);
        _output.Backward(_be, g.DBranch, _gelu, g.DInter, _rows);
        _be.GeluBackward(_preGelu, g.DInter, g.DInter);
        _intermediate.Backward(_be, g.DInter, _ffnIn, dFfnIn, _rows);
    }

    /// <summary>dAttnIn (written) from the gradient at the attention branch output.</summary>
    private void AttentionBackward(Tensor dBranchOut, Tensor dAttnIn, in DropoutPlan dropout)
    {
        int b = _batch, t = _seq, h = _heads, d = _headDim, bh = b * h;
        long td = (long)t * d, tt = (long)t * t;
        var g = _g;
        dropout.Backward(_be, dBranchOut, g.DBranch, DropoutPlan.AttentionOutputSite(_layer), attention: false);
        _attnOut.Backward(_be, g.DBranch, _ctxMerged, g.DCtxMerged, _rows);
        _be.MergeHeadsBackward(g.DCtxMerged, g.DCtx, b, t, h, d);
        // ctx = P V, P = softmax(scale Q K^T + mask).
        _be.GemmStridedBatched(false, true, t, t, d, 1f, g.DCtx, d, td, _v, d, td, 0f, g.DProbs, t, tt, bh);
        _be.GemmStridedBatched(true, false, t, d, t, 1f, _probsDropped, t, tt, g.DCtx, d, td, 0f, g.DV, d, td, bh);
        if (!ReferenceEquals(_probsDropped, _probs))
            dropout.Backward(_be, g.DProbs, g.DProbs, DropoutPlan.AttentionSite(_layer), attention: true);
        _be.AttentionSoftmaxBackward(_probs, g.DProbs, g.DProbs, Scale, bh * t, t);
        _be.GemmStridedBatched(false, false, t, d, t, 1f, g.DProbs, t, tt, _k, d, td, 0f, g.DQ, d, td, bh);
        _be.GemmStridedBatched(true, false, t, d, t, 1f, g.DProbs, t, tt, _q, d, td, 0f, g.DK, d, td, bh);
        _be.SplitQkvHeadsBackward(g.DQ, g.DK, g.DV, g.DQkv, b, t, h, d);
        _qkv.Backward(_be, g.DQkv, _attnIn, dAttnIn, _rows);
    }
}

/// <summary>Gradient scratch buffers for one layer's backward, reused by every layer in turn.</summary>
internal sealed class TransformerLayerScratch
{
    public TransformerLayerScratch(TensorArena arena, TransformerLayerShape shape)
    {
        int batch = shape.Batch, seq = shape.Seq, r = shape.Rows, c = shape.Hidden, h = shape.Heads, d = shape.HeadDim;
        Tensor F(params int[] s) => arena.Allocate(DType.F32, s);
        DSum2 = F(r, c); DBranch = F(r, c); DInter = F(r, shape.Intermediate); DH1 = F(r, c); DSum1 = F(r, c);
        DCtxMerged = F(r, c); DCtx = F(batch, h, seq, d); DProbs = F(batch * h * seq * seq);
        DQ = F(batch, h, seq, d); DK = F(batch, h, seq, d); DV = F(batch, h, seq, d); DQkv = F(r, 3 * c);
    }

    public Tensor DSum2 { get; }
    public Tensor DBranch { get; }
    public Tensor DInter { get; }
    public Tensor DH1 { get; }
    public Tensor DSum1 { get; }
    public Tensor DCtxMerged { get; }
    public Tensor DCtx { get; }
    public Tensor DProbs { get; }
    public Tensor DQ { get; }
    public Tensor DK { get; }
    public Tensor DV { get; }
    public Tensor DQkv { get; }
}
