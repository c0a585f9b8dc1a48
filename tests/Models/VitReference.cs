using NativeSparsity.Models.Vit;
using NativeSparsity.Tests.Engine;

namespace NativeSparsity.Tests.Models;

/// <summary>A plain float64 ViT forward over a flat copy of the parameter buffer, written from the definitions.</summary>
internal static class VitReference
{
    public static double[] Param(double[] values, VitParameterLayout layout, string name)
    {
        var s = layout[name];
        return values.AsSpan((int)s.Offset, (int)s.Length).ToArray();
    }

    /// <summary>y[r, o] = sum_i x[r, i] w[o, i] + b[o].</summary>
    public static double[] Dense(double[] x, int rows, int inDim, double[] w, double[] b, int outDim)
    {
        var y = new double[rows * outDim];
        for (int r = 0; r < rows; r++)
            for (int o = 0; o < outDim; o++)
            {
                double s = b[o];
                for (int i = 0; i < inDim; i++) s += x[r * inDim + i] * w[o * inDim + i];
                y[r * outDim + o] = s;
            }
        return y;
    }

    public static double[] LayerNorm(double[] x, int rows, int cols, double[] gamma, double[] beta, double eps)
    {
        var y = new double[x.Length];
        for (int r = 0; r < rows; r++)
        {
            double mean = 0, var = 0;
            for (int j = 0; j < cols; j++) mean += x[r * cols + j];
            mean /= cols;
            for (int j = 0; j < cols; j++) { double d = x[r * cols + j] - mean; var += d * d; }
            var /= cols;
            double rstd = 1 / Math.Sqrt(var + eps);
            for (int j = 0; j < cols; j++) y[r * cols + j] = (x[r * cols + j] - mean) * rstd * gamma[j] + beta[j];
        }
        return y;
    }

    private static double Gelu(double x) => 0.5 * x * (1 + GeluTests.ErfReference(x / Math.Sqrt(2)));

    /// <summary>Pre-LN layer: y = x + Attn(LN1(x)), out = y + FFN(LN2(y)), no masking, no dropout.</summary>
    public static double[] PreLnLayer(double[] values, VitParameterLayout layout, int layer, double[] x, int batch, int seq)
    {
        var cfg = layout.Config;
        int c = cfg.HiddenSize, heads = cfg.NumAttentionHeads, d = c / heads, inter = cfg.IntermediateSize, rows = batch * seq;
        string pre = VitParameterLayout.LayerPrefix(layer);
        double[] P(string n) => Param(values, layout, pre + n);
        var n1 = LayerNorm(x, rows, c, P("layernorm_before.weight"), P("layernorm_before.bias"), cfg.LayerNormEps);
        var q = Dense(n1, rows, c, P("attention.attention.query.weight"), P("attention.attention.query.bias"), c);
        var k = Dense(n1, rows, c, P("attention.attention.key.weight"), P("attention.attention.key.bias"), c);
        var v = Dense(n1, rows, c, P("attention.attention.value.weight"), P("attention.attention.value.bias"), c);
        var ctx = new double[rows * c];
        var scores = new double[seq];
        for (int b = 0; b < batch; b++)
            for (int h = 0; h < heads; h++)
                for (int i = 0; i < seq; i++)
                {
                    double max = double.NegativeInfinity;
                    for (int j = 0; j < seq; j++)
                    {
                        double s = 0;
                        for (int e = 0; e < d; e++) s += q[(b * seq + i) * c + h * d + e] * k[(b * seq + j) * c + h * d + e];
                        scores[j] = s / Math.Sqrt(d);
                        max = Math.Max(max, scores[j]);
                    }
                    double z = 0;
                    for (int j = 0; j < seq; j++) { scores[j] = Math.Exp(scores[j] - max); z += scores[j]; }
                    for (int e = 0; e < d; e++)
                    {
                        double s = 0;
                        for (int j = 0; j < seq; j++) s += scores[j] / z * v[(b * seq + j) * c + h * d + e];
                        ctx[(b * seq + i) * c + h * d + e] = s;
                    }
                }
        var attn = Dense(ctx, rows, c, P("attention.output.dense.weight"), P("attention.output.dense.bias"), c);
        var y = new double[rows * c];
        for (int i = 0; i < y.Length; i++) y[i] = x[i] + attn[i];
        var n2 = LayerNorm(y, rows, c, P("layernorm_after.weight"), P("layernorm_after.bias"), cfg.LayerNormEps);
        var hmid = Dense(n2, rows, c, P("intermediate.dense.weight"), P("intermediate.dense.bias"), inter);
        for (int i = 0; i < hmid.Length; i++) hmid[i] = Gelu(hmid[i]);
        var f = Dense(hmid, rows, inter, P("output.dense.weight"), P("output.dense.bias"), c);
        var outp = new double[rows * c];
        for (int i = 0; i < outp.Length; i++) outp[i] = y[i] + f[i];
        return outp;
    }

    /// <summary>The whole model: (final hidden [B*S, c], logits [B, labels] or null, predictions [masked, D] or null).</summary>
    public static (double[] Final, double[]? Logits, double[]? Predictions) Model(double[] values, VitParameterLayout layout, VitBatch batch)
    {
        var cfg = layout.Config;
        int c = cfg.HiddenSize, pcount = cfg.NumPatches, seq = cfg.SeqLength, dim = cfg.PatchDim, bsz = batch.Batch, rows = bsz * seq;
        var patches = batch.Patches.Select(f => (double)f).ToArray();
        var proj = Dense(patches, bsz * pcount, dim, Param(values, layout, VitParameterLayout.PatchProjection + ".weight"),
                         Param(values, layout, VitParameterLayout.PatchProjection + ".bias"), c);
        var cls = Param(values, layout, VitParameterLayout.ClsToken);
        var pos = Param(values, layout, VitParameterLayout.PositionEmbeddings);
        var maskToken = layout.Contains(VitParameterLayout.MaskToken) ? Param(values, layout, VitParameterLayout.MaskToken) : null;
        var x = new double[rows * c];
        var maskedRows = new List<int>();
        for (int b = 0; b < bsz; b++)
            for (int t = 0; t < seq; t++)
            {
                int row = b * seq + t;
                bool masked = t > 0 && batch.PatchMask != null && batch.PatchMask[b * pcount + t - 1] != 0;
                if (masked) maskedRows.Add(row);
                for (int j = 0; j < c; j++)
                    x[row * c + j] = pos[t * c + j] + (t == 0 ? cls[j] : masked ? maskToken![j] : proj[(b * pcount + t - 1) * c + j]);
            }
        for (int l = 0; l < cfg.NumHiddenLayers; l++) x = PreLnLayer(values, layout, l, x, bsz, seq);
        var final = LayerNorm(x, rows, c, Param(values, layout, VitParameterLayout.FinalLayerNorm + ".weight"),
                              Param(values, layout, VitParameterLayout.FinalLayerNorm + ".bias"), cfg.LayerNormEps);
        double[]? logits = null, predictions = null;
        int labels = layout.Heads.ClassifierLabels;
        if (labels > 0)
        {
            var clsRows = new double[bsz * c];
            for (int b = 0; b < bsz; b++) Array.Copy(final, b * seq * c, clsRows, b * c, c);
            logits = Dense(clsRows, bsz, c, Param(values, layout, "classifier.weight"), Param(values, layout, "classifier.bias"), labels);
        }
        if (layout.Heads.MaskedPatches && maskedRows.Count > 0)
        {
            var gathered = new double[maskedRows.Count * c];
            for (int m = 0; m < maskedRows.Count; m++) Array.Copy(final, maskedRows[m] * c, gathered, m * c, c);
            predictions = Dense(gathered, maskedRows.Count, c, Param(values, layout, "decoder.0.weight"), Param(values, layout, "decoder.0.bias"), dim);
        }
        return (final, logits, predictions);
    }
}
