using NativeSparsity.Engine.Backends.Cpu;
using NUnit.Framework;

namespace NativeSparsity.Tests.Engine;

public class TanhTests
{
    [TestCase(1)]
    [TestCase(17)]
    [TestCase(1000)]
    public void ForwardAndBackwardMatchFloat64(int n)
    {
        var rng = new System.Random(TestUtil.FreshSeed());
        var be = new CpuBackend();
        float[] x = TestUtil.RandomFloats(rng, n, 4f), dy = TestUtil.RandomFloats(rng, n);
        var tx = TestUtil.Upload(be, x);
        var ty = be.Allocate(NativeSparsity.Engine.Tensors.DType.F32, n);
        be.TanhForward(tx, ty);
        var tdy = TestUtil.Upload(be, dy);
        var tdx = be.Allocate(NativeSparsity.Engine.Tensors.DType.F32, n);
        be.TanhBackward(ty, tdy, tdx);
        var y = new double[n]; var dx = new double[n];
        for (int i = 0; i < n; i++)
        {
            y[i] = Math.Tanh(x[i]);
            // Central difference of tanh in float64 for the derivative.
            const double h = 1e-6;
            dx[i] = dy[i] * (Math.Tanh(x[i] + h) - Math.Tanh(x[i] - h)) / (2 * h);
        }
        TestUtil.AssertClose(TestUtil.Download(ty), y, 1e-6, 1e-7, "tanh");
        TestUtil.AssertClose(TestUtil.Download(tdx), dx, 1e-5, 1e-6, "tanh backward");
    }
}
