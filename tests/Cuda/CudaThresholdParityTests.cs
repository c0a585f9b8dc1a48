using NativeSparsity.Engine.Backends.Cpu;
using NativeSparsity.Engine.Backends.Cuda;
using NativeSparsity.Engine.Sparsity;
using NativeSparsity.Engine.Tensors;
using NativeSparsity.Tests.Engine;
using NUnit.Framework;

namespace NativeSparsity.Tests.Cuda;

/// <summary>
/// The global magnitude threshold and keep mask (and N:M masks) from the CPU and from
/// kernels/radixselect.cu on the same weights: thresholds, counts and every mask byte must be
/// identical. Skipped, with the reason, where no GPU is usable (the host emulation in
/// HostKernelTests checks the same kernels against a sorted reference on every run).
/// </summary>
[NonParallelizable]
public class CudaThresholdParityTests
{
    private CpuBackend _cpu = null!;
    private CudaBackend? _gpu;
    private string _why = "";
    private System.Random _rng = null!;

    [OneTimeSetUp]
    public void OpenBackends()
    {
        _cpu = new CpuBackend();
        try { _gpu = CudaBackend.Create(); }
        catch (Exception e) { _why = $"{e.GetType().Name}: {e.Message}"; }
    }

    [OneTimeTearDown]
    public void CloseBackends()
    {
        _gpu?.Dispose();
        _cpu.Dispose();
    }

    [SetUp]
    public void RequireGpu()
    {
        if (_gpu == null) Assert.Ignore($"no usable GPU, threshold parity not checked: {_why}");
        _rng = new System.Random(TestUtil.FreshSeed());
    }

    /// <summary>Two matrices when the span splits evenly into 7-row halves (error messages name them), else one row.</summary>
    private static PrunableMatrix[] Layout(int n) =>
        n % 14 == 0 ? [new("a.weight", 0, 7, n / 14), new("b.weight", n / 2, 7, n / 14)] : [new("only.weight", 0, 1, n)];

    private (PrunableSet Cpu, PrunableSet Gpu) Sets(float[] w) =>
        (new PrunableSet(TestUtil.Upload(_cpu, w), Layout(w.Length)), new PrunableSet(TestUtil.Upload(_gpu!, w), Layout(w.Length)));

    private float[] Weights(string kind, int n) => kind switch
    {
        "normal" => TestUtil.RandomNormals(_rng, n, 0.04f),
        "all equal" => Enumerable.Repeat(0.5f, n).ToArray(),
        "equal magnitude both signs" => Enumerable.Range(0, n).Select(_ => _rng.Next(2) == 0 ? 0.5f : -0.5f).ToArray(),
        "ties" => Enumerable.Range(0, n).Select(_ => new[] { 0f, -0f, 1e-3f, -1e-3f, 0.5f, -0.5f, 2f }[_rng.Next(7)]).ToArray(),
        "signed zeros" => Enumerable.Range(0, n).Select(_ => _rng.Next(2) == 0 ? 0f : -0f).ToArray(),
        "denormals" => Enumerable.Range(0, n).Select(_ => BitConverter.Int32BitsToSingle(_rng.Next(1, 1 << 23) | (_rng.Next(2) << 31))).ToArray(),
        _ => throw new ArgumentException(kind),
    };

    public static IEnumerable<TestCaseData> Cases()
    {
        foreach (string kind in new[] { "normal", "all equal", "equal magnitude both signs", "ties", "signed zeros", "denormals" })
            foreach (int n in new[] { 1, 7, 4097, 12_292, 1_000_003 })
                yield return new TestCaseData(kind, n).SetName($"SameThresholdsAndMasks_{kind.Replace(' ', '_')}_{n}");
        yield return new TestCaseData("normal", 7_077_888).SetName("SameThresholdsAndMasks_normal_bert_layer");
    }

    [TestCaseSource(nameof(Cases))]
    public void SameThresholdsAndMasks(string kind, int n)
    {
        var w = Weights(kind, n);
        var (cpuSet, gpuSet) = Sets(w);
        // Sweep levels, k = 0, k = 1, k = n and 20 counts (more than one device group of 16).
        var counts = GlobalMagnitudeThreshold.DefaultSweep.Select(s => GlobalMagnitudeThreshold.PruneCount(s, n))
            .Concat(new long[] { 0, 1, n, n - 1 }).Concat(Enumerable.Range(0, 7).Select(_ => _rng.NextInt64(n + 1))).ToArray();
        var cpu = GlobalMagnitudeThreshold.SweepCounts(cpuSet, counts);
        var gpu = GlobalMagnitudeThreshold.SweepCounts(gpuSet, counts);
        Assert.That(gpu, Is.EqualTo(cpu), $"{kind} n={n}: thresholds and counts");
        var cpuKeep = _cpu.Allocate(DType.U8, n);
        var gpuKeep = _gpu!.Allocate(DType.U8, n);
        var down = new byte[n];
        for (int j = 0; j < counts.Length; j++)
        {
            GlobalMagnitudeThreshold.WriteKeepMask(cpuSet, cpu[j], cpuKeep);
            GlobalMagnitudeThreshold.WriteKeepMask(gpuSet, gpu[j], gpuKeep);
            _gpu.CopyToHost<byte>(gpuKeep, down);
            Assert.That(down.AsSpan().SequenceEqual(cpuKeep.U8Span()), $"{kind} n={n}: keep mask for k = {counts[j]}");
            Assert.That(n - down.Count(b => b != 0), Is.EqualTo(counts[j]), "pruned count");
        }
    }

    [Test]
    public void GlobalMagnitudeSweepMasksMatchOnBertShapedSets()
    {
        var layout = PrunableSet.BertEncoderLayout(2, 64, 256);
        int n = (int)layout.Sum(m => m.Count);
        var w = TestUtil.RandomNormals(_rng, n, 0.04f);
        var cpuSet = new PrunableSet(TestUtil.Upload(_cpu, w), layout);
        var gpuSet = new PrunableSet(TestUtil.Upload(_gpu!, w), layout);
        var cpu = Masks.GlobalMagnitudeSweep(cpuSet, GlobalMagnitudeThreshold.DefaultSweep);
        var gpu = Masks.GlobalMagnitudeSweep(gpuSet, GlobalMagnitudeThreshold.DefaultSweep);
        var down = new byte[n];
        for (int j = 0; j < cpu.Length; j++)
        {
            Assert.That(gpu[j].Keep.Backend, Is.SameAs(_gpu), "the mask stays on the device");
            _gpu!.CopyToHost<byte>(gpu[j].Keep, down);
            Assert.That(down.AsSpan().SequenceEqual(cpu[j].Keep.U8Span()), $"mask {cpu[j].Description}");
            Assert.That(gpu[j].Description, Is.EqualTo(cpu[j].Description));
        }
    }

    [TestCase(2, 4)]
    [TestCase(1, 4)]
    [TestCase(2, 8)]
    [TestCase(4, 8)]
    [TestCase(3, 64)]
    public void NMMasksMatch(int keepN, int m)
    {
        var layout = PrunableSet.BertEncoderLayout(1, 64, 256);
        int n = (int)layout.Sum(x => x.Count);
        // Half the weights from a few values, so groups hold ties, +0 and -0.
        var w = TestUtil.RandomNormals(_rng, n, 0.04f);
        for (int i = 0; i < n; i += 2) w[i] = new[] { 0f, -0f, 0.01f, -0.01f }[_rng.Next(4)];
        var cpu = Masks.NM(new PrunableSet(TestUtil.Upload(_cpu, w), layout), keepN, m);
        var gpu = Masks.NM(new PrunableSet(TestUtil.Upload(_gpu!, w), layout), keepN, m);
        var down = new byte[n];
        _gpu!.CopyToHost<byte>(gpu.Keep, down);
        Assert.That(down.AsSpan().SequenceEqual(cpu.Keep.U8Span()), $"{keepN}:{m} mask");
        w[777] = float.NegativeInfinity;
        var e = Assert.Throws<ArgumentException>(() => Masks.NM(new PrunableSet(TestUtil.Upload(_gpu!, w), layout), keepN, m))!;
        var c = Assert.Throws<ArgumentException>(() => Masks.NM(new PrunableSet(TestUtil.Upload(_cpu, w), layout), keepN, m))!;
        Assert.That(e.Message, Is.EqualTo(c.Message));
    }

    [Test]
    public void NonFiniteWeightsAreErrorsNamingMatrixAndIndex()
    {
        var layout = PrunableSet.BertEncoderLayout(1, 16, 64);
        int n = (int)layout.Sum(m => m.Count);
        var w = TestUtil.RandomNormals(_rng, n, 0.04f);
        w[300] = float.NaN;
        w[n - 5] = float.PositiveInfinity;
        var gpuSet = new PrunableSet(TestUtil.Upload(_gpu!, w), layout);
        var cpuSet = new PrunableSet(TestUtil.Upload(_cpu, w), layout);
        var e = Assert.Throws<ArgumentException>(() => GlobalMagnitudeThreshold.Compute(gpuSet, 0.5))!;
        var c = Assert.Throws<ArgumentException>(() => GlobalMagnitudeThreshold.Compute(cpuSet, 0.5))!;
        Assert.That(e.Message, Is.EqualTo(c.Message));
        Assert.That(e.Message, Does.Contain("bert.encoder.layer.0.attention.self.key.weight[2, 12]"));
    }
}
