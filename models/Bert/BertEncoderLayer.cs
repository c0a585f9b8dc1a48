using NativeSparsity.Engine.Backends;
using NativeSparsity.Engine.Tensors;

namespace NativeSparsity.Models.Bert;

/// <summary>
/// One post-LN BERT encoder layer over [batch*seq, hidden] rows: fused QKV projection, scaled
/// dot-product attention with a padding mask, output projection, residual + LayerNorm, GELU FFN,
/// residual + LayerNorm. Forward saves what the backward needs; backward writes the input
/// gradient and accumulates parameter gradients.
/// </summary>
internal sealed class BertEncoderLayer
{
    private readonly IBackend _be;
    private readonly int _layer, _batch, _seq, _hidden, _heads, _headDim, _inter, _rows;
    private readonly Linear _qkv, _attnOut, _intermediate, _output;
    private readonly LayerNormParams _ln1, _ln2;
    private readonly float _eps;

    // Saved activations.
    private readonly Tensor _input, _qkvAct, _q, _k, _v, _probs, _probsDropped, _ctx, _ctxMerged, _attnProj,
        _sum1, _h1, _mean1, _rstd1, _preGelu, _gelu, _ffnOut, _sum2, _mean2, _rstd2;

    // Gradient scratch shared by all layers (owned by the model).
    private readonly BertLayerScratch _g;

    public BertEncoderLayer(IBackend be, BertParameters p, int layer, int batch, int seq, Tensor input, Tensor output, BertLayerScratch scratch, TensorArena arena)
    {
        var cfg = p.Config;
        _be = be; _layer = layer; _batch = batch; _seq = seq;
        _hidden = cfg.HiddenSize; _heads = cfg.NumAttentionHeads; _headDim = cfg.HeadDim; _inter = cfg.IntermediateSize;
        _rows = batch * seq; _eps = cfg.LayerNormEps; _g = scratch;
        string pre = BertParameterLayout.LayerPrefix(layer);
        // Q, K, V weights (and biases) are adjacent in the flat buffer: one [3C, C] projection.
        var q = p.Linear(pre + "attention.self.query");
        var qb = p.Layout[pre + "attention.self.query.bias"];
        _qkv = new Linear(
            p.Values.Slice(p.Layout[pre + "attention.self.query.weight"].Offset, 3 * _hidden, _hidden),
            p.Values.Slice(qb.Offset, 3 * _hidden),
            p.Grads.Slice(p.Layout[pre + "attention.self.query.weight"].Offset, 3 * _hidden, _hidden),
            p.Grads.Slice(qb.Offset, 3 * _hidden), _hidden, 3 * _hidden);
        _ = q;
        _attnOut = p.Linear(pre + "attention.output.dense");
        _intermediate = p.Linear(pre + "intermediate.dense");
        _output = p.Linear(pre + "output.dense");
        _ln1 = p.LayerNorm(pre + "attention.output.LayerNorm");
        _ln2 = p.LayerNorm(pre + "output.LayerNorm");

        int r = _rows, c = _hidden, scores = batch * _heads * seq * seq;
        Tensor F(params int[] shape) => arena.Allocate(DType.F32, shape);
        _input = input;
        _qkvAct = F(r, 3 * c);
        _q = F(batch, _heads, seq, _headDim); _k = F(batch, _heads, seq, _headDim); _v = F(batch, _heads, seq, _headDim);
        _probs = F(scores);
        _probsDropped = cfg.AttentionProbsDropoutProb > 0 ? F(scores) : _probs;
        _ctx = F(batch, _heads, seq, _headDim); _ctxMerged = F(r, c); _attnProj = F(r, c);
        _sum1 = F(r, c); _h1 = F(r, c); _mean1 = F(r); _rstd1 = F(r);
        _preGelu = F(r, _inter); _gelu = F(r, _inter); _ffnOut = F(r, c);
        _sum2 = F(r, c); _mean2 = F(r); _rstd2 = F(r);
        Output = output;
    }

    public Tensor Output { get; }

    private float Scale => 1f / MathF.Sqrt(_headDim);

    public void Forward(Tensor keyMask, in DropoutPlan dropout)
    {
        int b = _batch, t = _seq, h = _heads, d = _headDim, bh = b * h;
        long td = (long)t * d, tt = (long)t * t;
        _qkv.Forward(_be, _input, _qkvAct, _rows);
        _be.SplitQkvHeads(_qkvAct, _q, _k, _v, b, t, h, d);
        _be.GemmStridedBatched(false, true, t, t, d, 1f, _q, d, td, _k, d, td, 0f, _probs, t, tt, bh);
        _be.AttentionSoftmaxForward(_probs, keyMask, _probs, Scale, b, h, t, t);
        if (!ReferenceEquals(_probsDropped, _probs))
            dropout.Apply(_be, _probs, _probsDropped, DropoutPlan.AttentionSite(_layer), attention: true);
        _be.GemmStridedBatched(false, false, t, d, t, 1f, _probsDropped, t, tt, _v, d, td, 0f, _ctx, d, td, bh);
        _be.MergeHeads(_ctx, _ctxMerged, b, t, h, d);
        _attnOut.Forward(_be, _ctxMerged, _attnProj, _rows);
        dropout.Apply(_be, _attnProj, _attnProj, DropoutPlan.AttentionOutputSite(_layer), attention: false);
        _be.AddLayerNormForward(_input, _attnProj, _sum1, _ln1.Gamma, _ln1.Beta, _h1, _mean1, _rstd1, _rows, _hidden, _eps);
        _intermediate.Forward(_be, _h1, _preGelu, _rows);
        _be.GeluForward(_preGelu, _gelu);
        _output.Forward(_be, _gelu, _ffnOut, _rows);
        dropout.Apply(_be, _ffnOut, _ffnOut, DropoutPlan.FfnOutputSite(_layer), attention: false);
        _be.AddLayerNormForward(_h1, _ffnOut, _sum2, _ln2.Gamma, _ln2.Beta, Output, _mean2, _rstd2, _rows, _hidden, _eps);
    }

    /// <summary>dOutput -> dInput (written); parameter gradients accumulate.</summary>
    public void Backward(Tensor dOutput, Tensor dInput, in DropoutPlan dropout)
    {
        int b = _batch, t = _seq, h = _heads, d = _headDim, bh = b * h;
        long td = (long)t * d, tt = (long)t * t;
        var g = _g;
        // Second residual block.
        _be.LayerNormBackward(dOutput, _sum2, _ln2.Gamma, _mean2, _rstd2, g.DSum2, _ln2.GammaGrad, _ln2.BetaGrad, _rows, _hidden);
        dropout.Backward(_be, g.DSum2, g.DBranch, DropoutPlan.FfnOutputSite(_layer), attention: false);
        _output.Backward(_be, g.DBranch, _gelu, g.DInter, _rows);
        _be.GeluBackward(_preGelu, g.DInter, g.DInter);
        _intermediate.Backward(_be, g.DInter, _h1, g.DH1, _rows);
        _be.Add(g.DH1, g.DSum2, g.DH1);
        // First residual block.
        _be.LayerNormBackward(g.DH1, _sum1, _ln1.Gamma, _mean1, _rstd1, g.DSum1, _ln1.GammaGrad, _ln1.BetaGrad, _rows, _hidden);
        dropout.Backward(_be, g.DSum1, g.DBranch, DropoutPlan.AttentionOutputSite(_layer), attention: false);
        _attnOut.Backward(_be, g.DBranch, _ctxMerged, g.DCtxMerged, _rows);
        _be.MergeHeadsBackward(g.DCtxMerged, g.DCtx, b, t, h, d);
        // Attention: ctx = P V, P = softmax(scale Q K^T + mask).
        _be.GemmStridedBatched(false, true, t, t, d, 1f, g.DCtx, d, td, _v, d, td, 0f, g.DProbs, t, tt, bh);
        _be.GemmStridedBatched(true, false, t, d, t, 1f, _probsDropped, t, tt, g.DCtx, d, td, 0f, g.DV, d, td, bh);
        if (!ReferenceEquals(_probsDropped, _probs))
            dropout.Backward(_be, g.DProbs, g.DProbs, DropoutPlan.AttentionSite(_layer), attention: true);
        _be.AttentionSoftmaxBackward(_probs, g.DProbs, g.DProbs, Scale, bh * t, t);
        _be.GemmStridedBatched(false, false, t, d, t, 1f, g.DProbs, t, tt, _k, d, td, 0f, g.DQ, d, td, bh);
        _be.GemmStridedBatched(true, false, t, d, t, 1f, g.DProbs, t, tt, _q, d, td, 0f, g.DK, d, td, bh);
        _be.SplitQkvHeadsBackward(g.DQ, g.DK, g.DV, g.DQkv, b, t, h, d);
        _qkv.Backward(_be, g.DQkv, _input, dInput, _rows);
        _be.Add(dInput, g.DSum1, dInput);
    }
}

/// <summary>Gradient scratch buffers for one layer's backward, reused by every layer in turn.</summary>
internal sealed class BertLayerScratch
{
    public BertLayerScratch(TensorArena arena, BertConfig cfg, int batch, int seq)
    {
        int r = batch * seq, c = cfg.HiddenSize, h = cfg.NumAttentionHeads, d = cfg.HeadDim;
        Tensor F(params int[] shape) => arena.Allocate(DType.F32, shape);
        DSum2 = F(r, c); DBranch = F(r, c); DInter = F(r, cfg.IntermediateSize); DH1 = F(r, c); DSum1 = F(r, c);
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
