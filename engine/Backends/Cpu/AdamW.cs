using System.Numerics;
using NativeSparsity.Engine.Tensors;

namespace NativeSparsity.Engine.Backends.Cpu;

public sealed unsafe partial class CpuBackend
{
    private const int OptimizerChunk = 1 << 16; // a multiple of Vector<byte>.Count on every machine

    /// <summary>
    /// Fused masked AdamW in torch.optim.AdamW's order, per element (float32, no fused multiply-add,
    /// so the vector body and the scalar tail agree bitwise and the CUDA kernel can match):
    ///   g  = grad * clip            clip = min(1, MaxGradNorm / sqrt(gradNormSquared[0])) or 1
    ///   p  = p * (1 - lr*wd)        decoupled weight decay first, as torch does
    ///   m  = b1*m + (1-b1)*g
    ///   v  = b2*v + (1-b2)*g*g
    ///   p  = p - (lr/bc1) * m / (sqrt(v) / sqrt(bc2) + eps)     bc_i = 1 - b_i^step
    /// The scalars (1 - lr*wd, lr/bc1, sqrt(bc2), clip) are computed in double and rounded once; the
    /// moment update is written b*m + (1-b)*g where torch uses lerp (same value up to rounding).
    /// Where mask == 0, p, grad, m and v are written as +0. The unmasked grad is left unscaled.
    /// </summary>
    public void AdamW(Tensor param, Tensor grad, Tensor m, Tensor v, Tensor? mask, Tensor? gradNormSquared, in AdamWParameters p)
    {
        long n = param.Length;
        float* pp = param.F32(), pg = grad.F32(), pm = m.F32(), pv = v.F32();
        CheckSameLength(param, grad, nameof(grad));
        CheckSameLength(param, m, nameof(m));
        CheckSameLength(param, v, nameof(v));
        byte* pk = null;
        if (mask != null)
        {
            pk = mask.U8();
            CheckSameLength(param, mask, nameof(mask));
        }
        if (p.Step < 1) throw new ArgumentOutOfRangeException(nameof(p), p.Step, "AdamW step is 1-based and must be at least 1");
        if (!(p.Beta1 >= 0 && p.Beta1 < 1 && p.Beta2 >= 0 && p.Beta2 < 1))
            throw new ArgumentOutOfRangeException(nameof(p), $"AdamW betas must lie in [0, 1), got {p.Beta1}, {p.Beta2}");

        double clip = 1.0;
        if (gradNormSquared != null && p.MaxGradNorm > 0)
        {
            CpuTensor.ExpectLength(gradNormSquared, 1, nameof(gradNormSquared));
            double norm = Math.Sqrt(gradNormSquared.F32()[0]);
            clip = Math.Min(1.0, p.MaxGradNorm / norm);
        }
        float scale = (float)clip;
        float decay = (float)(1.0 - (double)p.LearningRate * p.WeightDecay);
        float b1 = p.Beta1, b2 = p.Beta2, c1 = 1f - p.Beta1, c2 = 1f - p.Beta2, eps = p.Epsilon;
        float stepSize = (float)(p.LearningRate / (1.0 - Math.Pow(p.Beta1, p.Step)));
        float sqrtBc2 = (float)Math.Sqrt(1.0 - Math.Pow(p.Beta2, p.Step));

        CpuParallel.ForRange(n, OptimizerChunk, (start, end) =>
        {
            long i = start;
            if (Vector.IsHardwareAccelerated)
            {
                int w = Vector<float>.Count, bytes = Vector<byte>.Count;
                var vScale = new Vector<float>(scale); var vDecay = new Vector<float>(decay);
                var vB1 = new Vector<float>(b1); var vB2 = new Vector<float>(b2);
                var vC1 = new Vector<float>(c1); var vC2 = new Vector<float>(c2);
                var vStep = new Vector<float>(stepSize); var vSqrtBc2 = new Vector<float>(sqrtBc2);
                var vEps = new Vector<float>(eps);
                for (; i + bytes <= end; i += bytes)
                {
                    // One byte vector of mask covers four float vectors.
                    Vector<uint> k0 = Vector<uint>.AllBitsSet, k1 = k0, k2 = k0, k3 = k0;
                    if (pk != null)
                    {
                        WidenMask(Vector.Load(pk + i), out var a, out var b, out var c, out var d);
                        k0 = ~Vector.Equals(a, Vector<uint>.Zero); k1 = ~Vector.Equals(b, Vector<uint>.Zero);
                        k2 = ~Vector.Equals(c, Vector<uint>.Zero); k3 = ~Vector.Equals(d, Vector<uint>.Zero);
                    }
                    Step(i, k0); Step(i + w, k1); Step(i + 2 * w, k2); Step(i + 3 * w, k3);
                }

                void Step(long at, Vector<uint> keepBits)
                {
                    var keep = Vector.AsVectorSingle(keepBits);
                    var g = Vector.Load(pg + at) * vScale;
                    var mt = vB1 * Vector.Load(pm + at) + vC1 * g;
                    var vt = vB2 * Vector.Load(pv + at) + vC2 * (g * g);
                    var pt = Vector.Load(pp + at) * vDecay;
                    pt -= vStep * mt / (Vector.SquareRoot(vt) / vSqrtBc2 + vEps);
                    // +0 where masked: the select yields the zero vector's bits, not -0.
                    Vector.ConditionalSelect(keep, pt, Vector<float>.Zero).Store(pp + at);
                    Vector.ConditionalSelect(keep, mt, Vector<float>.Zero).Store(pm + at);
                    Vector.ConditionalSelect(keep, vt, Vector<float>.Zero).Store(pv + at);
                    if (pk != null) Vector.ConditionalSelect(keep, Vector.Load(pg + at), Vector<float>.Zero).Store(pg + at);
                }
            }
            for (; i < end; i++)
            {
                if (pk != null && pk[i] == 0)
                {
                    pp[i] = 0f; pg[i] = 0f; pm[i] = 0f; pv[i] = 0f;
                    continue;
                }
                float g = pg[i] * scale;
                float mt = b1 * pm[i] + c1 * g;
                float vt = b2 * pv[i] + c2 * (g * g);
                float pt = pp[i] * decay;
                pt -= stepSize * mt / (MathF.Sqrt(vt) / sqrtBc2 + eps);
                pp[i] = pt; pm[i] = mt; pv[i] = vt;
            }
        });
    }

    public void ApplyMask(Tensor x, Tensor mask)
    {
        float* px = x.F32();
        byte* pk = mask.U8();
        CheckSameLength(x, mask, nameof(mask));
        CpuParallel.ForRange(x.Length, OptimizerChunk, (start, end) =>
        {
            long i = start;
            if (Vector.IsHardwareAccelerated)
            {
                int w = Vector<float>.Count, bytes = Vector<byte>.Count;
                for (; i + bytes <= end; i += bytes)
                {
                    WidenMask(Vector.Load(pk + i), out var a, out var b, out var c, out var d);
                    Keep(i, a); Keep(i + w, b); Keep(i + 2 * w, c); Keep(i + 3 * w, d);
                }

                void Keep(long at, Vector<uint> k)
                {
                    var keep = Vector.AsVectorSingle(~Vector.Equals(k, Vector<uint>.Zero));
                    Vector.ConditionalSelect(keep, Vector.Load(px + at), Vector<float>.Zero).Store(px + at);
                }
            }
            for (; i < end; i++) if (pk[i] == 0) px[i] = 0f;
        });
    }

    /// <summary>Mask bytes to four vectors of uint lanes, in element order.</summary>
    private static void WidenMask(Vector<byte> bytes, out Vector<uint> a, out Vector<uint> b, out Vector<uint> c, out Vector<uint> d)
    {
        Vector.Widen(bytes, out Vector<ushort> lo, out Vector<ushort> hi);
        Vector.Widen(lo, out a, out b);
        Vector.Widen(hi, out c, out d);
    }

    private static void CheckSameLength(Tensor reference, Tensor other, string name)
    {
        if (other.Length != reference.Length)
            throw new ArgumentException($"{name}: {other} holds {other.Length} elements, expected {reference.Length} like {reference}");
    }
}
