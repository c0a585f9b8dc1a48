using System.Runtime.Intrinsics;
using NativeSparsity.Engine.Tensors;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace NativeSparsity.Engine.Backends.Cpu;

// LayerNorm over the last dimension. Statistics are two-pass in double over the row (mean, then
// the mean of squared deviations), so a row with a large common offset loses no precision; the
// saved float mean/rstd are exactly what the normalisation and the backward pass then use.
// y may alias x (forward) and dx may alias dy or x (backward): every write follows the reads it
// depends on, element by element.
public sealed unsafe partial class CpuBackend
{
    public void LayerNormForward(Tensor x, Tensor gamma, Tensor beta, Tensor y, Tensor mean, Tensor rstd,
                                 int rows, int cols, float eps)
    {
        ExpectLayerNormArguments(rows, cols, x, nameof(x), y, nameof(y), gamma, beta, mean, rstd);
        float* px = x.F32(), py = y.F32(), pg = gamma.F32(), pb = beta.F32(), pm = mean.F32(), pr = rstd.F32();
        CpuParallel.ForRows(rows, 3L * cols, (r0, r1) =>
        {
            for (int r = r0; r < r1; r++)
            {
                long o = (long)r * cols;
                LayerNormRow(px + o, pg, pb, py + o, pm + r, pr + r, cols, eps);
            }
        });
    }

    public void AddLayerNormForward(Tensor a, Tensor b, Tensor sum, Tensor gamma, Tensor beta, Tensor y,
                                    Tensor mean, Tensor rstd, int rows, int cols, float eps)
    {
        ExpectLayerNormArguments(rows, cols, a, nameof(a), y, nameof(y), gamma, beta, mean, rstd);
        ExpectMatrix(b, rows, cols, nameof(b));
        ExpectMatrix(sum, rows, cols, nameof(sum));
        float* pa = a.F32(), pbIn = b.F32(), ps = sum.F32(), py = y.F32();
        float* pg = gamma.F32(), pb = beta.F32(), pm = mean.F32(), pr = rstd.F32();
        CpuParallel.ForRows(rows, 4L * cols, (r0, r1) =>
        {
            for (int r = r0; r < r1; r++)
            {
                long o = (long)r * cols;
                TensorPrimitives.Add(new ReadOnlySpan<float>(pa + o, cols), new ReadOnlySpan<float>(pbIn + o, cols),
                                     new Span<float>(ps + o, cols));
                LayerNormRow(ps + o, pg, pb, py + o, pm + r, pr + r, cols, eps);
            }
        });
    }

    public void LayerNormBackward(Tensor dy, Tensor x, Tensor gamma, Tensor mean, Tensor rstd,
                                  Tensor dx, Tensor dgamma, Tensor dbeta, int rows, int cols)
    {
        if (rows > 0 && cols <= 0) throw new ArgumentOutOfRangeException(nameof(cols), $"LayerNorm over {cols} columns: cols must be positive");
        ExpectMatrix(dy, rows, cols, nameof(dy));
        ExpectMatrix(x, rows, cols, nameof(x));
        ExpectMatrix(dx, rows, cols, nameof(dx));
        ExpectVector(gamma, cols, nameof(gamma));
        ExpectVector(dgamma, cols, nameof(dgamma));
        ExpectVector(dbeta, cols, nameof(dbeta));
        ExpectVector(mean, rows, nameof(mean));
        ExpectVector(rstd, rows, nameof(rstd));
        float* pdy = dy.F32(), px = x.F32(), pg = gamma.F32(), pm = mean.F32(), pr = rstd.F32();
        float* pdx = dx.F32(), pdg = dgamma.F32(), pdb = dbeta.F32();

        // One pass over the rows in memory order: each row adds its dy * xhat and dy to its chunk's
        // double partials of dgamma and dbeta (read before the row's dx is written, as dx may be dy
        // or x), then writes dx. The partials are added in chunk order: deterministic for any
        // thread count.
        ReduceColumnsByRowChunks(rows, 3 * cols, 2 * cols, 2 * cols, (r0, r1, _, _, partial) =>
        {
            for (int r = r0; r < r1; r++)
            {
                long o = (long)r * cols;
                LayerNormBackwardRow(pdy + o, px + o, pg, pm[r], pr[r], pdx + o, cols, partial, partial + cols);
            }
        }, totals =>
        {
            for (int j = 0; j < cols; j++)
            {
                pdg[j] += (float)totals[j];
                pdb[j] += (float)totals[cols + j];
            }
        });
    }

    private static void LayerNormRow(float* x, float* gamma, float* beta, float* y, float* meanOut, float* rstdOut,
                                     int cols, float eps)
    {
        double meanD = SumDouble(x, cols) / cols;
        double variance = SumSquaredDeviations(x, cols, meanD) / cols;
        float m = (float)meanD, rs = (float)(1.0 / Math.Sqrt(variance + eps));
        *meanOut = m;
        *rstdOut = rs;
        var vm = Vector256.Create(m);
        var vr = Vector256.Create(rs);
        int i = 0;
        for (; i + 8 <= cols; i += 8)
        {
            var xhat = (Vector256.Load(x + i) - vm) * vr;
            Vector256.FusedMultiplyAdd(xhat, Vector256.Load(gamma + i), Vector256.Load(beta + i)).Store(y + i);
        }
        for (; i < cols; i++) y[i] = MathF.FusedMultiplyAdd((x[i] - m) * rs, gamma[i], beta[i]);
    }

    /// <summary>Sum of (x - mean)^2 in double.</summary>
    private static double SumSquaredDeviations(float* x, int n, double mean)
    {
        var vm = Vector256.Create(mean);
        Vector256<double> acc0 = default, acc1 = default;
        int i = 0;
        for (; i + 8 <= n; i += 8)
        {
            var (lo, hi) = Vector256.Widen(Vector256.Load(x + i));
            lo -= vm; hi -= vm;
            acc0 = Vector256.FusedMultiplyAdd(lo, lo, acc0);
            acc1 = Vector256.FusedMultiplyAdd(hi, hi, acc1);
        }
        double total = HorizontalSum(acc0 + acc1);
        for (; i < n; i++) { double d = x[i] - mean; total += d * d; }
        return total;
    }

    /// <summary>
    /// dx = rstd * (g - mean(g) - xhat * mean(g * xhat)) with g = dy * gamma and xhat = (x - mean) * rstd;
    /// the two row means are accumulated in double.
    /// </summary>
    private static void LayerNormBackwardRow(float* dy, float* x, float* gamma, float m, float rs, float* dx, int cols,
                                             double* dgammaAcc, double* dbetaAcc)
    {
        var vm = Vector256.Create(m);
        var vr = Vector256.Create(rs);
        Vector256<double> s0 = default, s1 = default, t0 = default, t1 = default;
        int i = 0;
        for (; i + 8 <= cols; i += 8)
        {
            var d = Vector256.Load(dy + i);
            var g = d * Vector256.Load(gamma + i);
            var xhat = (Vector256.Load(x + i) - vm) * vr;
            var (glo, ghi) = Vector256.Widen(g);
            var (xlo, xhi) = Vector256.Widen(xhat);
            var (dlo, dhi) = Vector256.Widen(d);
            s0 += glo; s1 += ghi;
            t0 = Vector256.FusedMultiplyAdd(glo, xlo, t0);
            t1 = Vector256.FusedMultiplyAdd(ghi, xhi, t1);
            Vector256.FusedMultiplyAdd(dlo, xlo, Vector256.Load(dgammaAcc + i)).Store(dgammaAcc + i);
            Vector256.FusedMultiplyAdd(dhi, xhi, Vector256.Load(dgammaAcc + i + 4)).Store(dgammaAcc + i + 4);
            (Vector256.Load(dbetaAcc + i) + dlo).Store(dbetaAcc + i);
            (Vector256.Load(dbetaAcc + i + 4) + dhi).Store(dbetaAcc + i + 4);
        }
        double sumG = HorizontalSum(s0 + s1), sumGX = HorizontalSum(t0 + t1);
        for (int k = i; k < cols; k++)
        {
            float g = dy[k] * gamma[k], xhat = (x[k] - m) * rs;
            sumG += g;
            sumGX += (double)g * xhat;
            dgammaAcc[k] += (double)dy[k] * xhat;
            dbetaAcc[k] += dy[k];
        }
        float meanG = (float)(sumG / cols), meanGX = (float)(sumGX / cols);

        var vmg = Vector256.Create(meanG);
        var vmgx = Vector256.Create(meanGX);
        i = 0;
        for (; i + 8 <= cols; i += 8)
        {
            var g = Vector256.Load(dy + i) * Vector256.Load(gamma + i);
            var xhat = (Vector256.Load(x + i) - vm) * vr;
            (vr * (g - vmg - xhat * vmgx)).Store(dx + i);
        }
        for (; i < cols; i++)
        {
            float g = dy[i] * gamma[i], xhat = (x[i] - m) * rs;
            dx[i] = rs * (g - meanG - xhat * meanGX);
        }
    }

    private static void ExpectLayerNormArguments(int rows, int cols, Tensor input, string inputName, Tensor output,
                                                 string outputName, Tensor gamma, Tensor beta, Tensor mean, Tensor rstd)
    {
        if (rows > 0 && cols <= 0) throw new ArgumentOutOfRangeException(nameof(cols), $"LayerNorm over {cols} columns: cols must be positive");
        ExpectMatrix(input, rows, cols, inputName);
        ExpectMatrix(output, rows, cols, outputName);
        ExpectVector(gamma, cols, nameof(gamma));
        ExpectVector(beta, cols, nameof(beta));
        ExpectVector(mean, rows, nameof(mean));
        ExpectVector(rstd, rows, nameof(rstd));
    }
}
