using NativeSparsity.Engine.Backends.Cpu;
using NativeSparsity.Engine.Sparsity;
using NativeSparsity.Engine.Tensors;
using NativeSparsity.Tests.Engine;
using NUnit.Framework;

namespace NativeSparsity.Tests.Sparsity;

public class MaskFileTests
{
    [Test]
    public void MaskRoundTripsWithMetadataAndNamesTheMissingMatrix()
    {
        var rng = new System.Random(TestUtil.FreshSeed());
        var be = new CpuBackend();
        var matrices = new[] { new PrunableMatrix("bert.encoder.layer.0.attention.self.query.weight", 0, 5, 7),
                               new PrunableMatrix("bert.encoder.layer.0.intermediate.dense.weight", 35, 3, 5) };
        var span = TestUtil.Upload(be, TestUtil.RandomFloats(rng, 50));
        var set = new PrunableSet(span, matrices);
        var mask = Masks.GlobalMagnitude(set, 0.4);
        string path = Path.Combine(Path.GetTempPath(), $"mask-{Guid.NewGuid():N}.safetensors");
        try
        {
            MaskFile.Save(path, mask);
            var keep = be.Allocate(DType.U8, 50);
            var loaded = MaskFile.Load(path, set, keep);
            Assert.That(loaded.Kind, Is.EqualTo(MaskKind.GlobalMagnitude));
            Assert.That(loaded.RequestedSparsity, Is.EqualTo(0.4));
            Assert.That(keep.U8Span().ToArray(), Is.EqualTo(mask.Keep.U8Span().ToArray()));
            Assert.That(loaded.PrunedCount(), Is.EqualTo(20));

            var other = new PrunableSet(span, new[] { matrices[0], new PrunableMatrix("bert.encoder.layer.0.output.dense.weight", 35, 3, 5) });
            var ex = Assert.Throws<InvalidDataException>(() => MaskFile.Load(path, other, keep));
            Assert.That(ex!.Message, Does.Contain("output.dense.weight_mask").And.Contain(path));
        }
        finally { File.Delete(path); }
    }
}
