using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using NativeSparsity.Engine.Backends.Cpu;
using NativeSparsity.Engine.IO;
using NativeSparsity.Models.Bert;
using NativeSparsity.Models.Transformer;
using NativeSparsity.Models.Vit;
using NativeSparsity.Tests.Engine;
using NUnit.Framework;

namespace NativeSparsity.Tests.IO;

[TestFixture]
public class SparseBitmaskTests
{
    private string _dir = "";

    [SetUp]
    public void SetUp()
    {
        _dir = Path.Combine(Path.GetTempPath(), "nsparse-sb-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_dir);
    }

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    private static byte[] Bytes<T>(T[] a) where T : unmanaged => MemoryMarshal.AsBytes(a.AsSpan()).ToArray();

    /// <summary>A sparse matrix with special values: -0.0 and NaN must survive, +0.0 is what gets dropped.</summary>
    private static float[] SparseFloats(Random rng, int n, double density)
    {
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = rng.NextDouble() < density ? (float)(rng.NextDouble() * 2 - 1) : 0f;
        if (n > 3) { a[1] = -0f; a[2] = float.NaN; a[3] = float.NegativeInfinity; }
        return a;
    }

    [Test]
    public void HandWrittenLayoutDecodesWithLittleEndianBitOrder()
    {
        // Row 0 = [0, 1.5, 0, 0, 0, 0, 0, 0, 2]: column 1 is bit 1 of byte 0, column 8 is bit 0 of byte 1
        // (numpy.packbits(..., bitorder="little")). Row 1 = [3, 0, ..., 0].
        string path = Path.Combine(_dir, "hand.safetensors");
        new SafetensorsWriter()
            .Add("m.compressed", new[] { 1.5f, 2f, 3f }, 3)
            .Add("m.bitmask", new byte[] { 0b0000_0010, 0b0000_0001, 0b0000_0001, 0 }, 2, 2)
            .Add("m.shape", SafetensorsDType.I64, new long[] { 2 }, Bytes(new long[] { 2, 9 }))
            .Add("m.row_offsets", SafetensorsDType.I64, new long[] { 2 }, Bytes(new long[] { 0, 2 }))
            .Add("m.bias", new[] { 7f }, 1)
            .Write(path);
        using var file = SafetensorsFile.Open(path);
        Assert.That(file.Tensors.Select(t => t.Name), Is.EquivalentTo(new[] { "m.weight", "m.bias" }));
        var info = file.Get("m.weight");
        Assert.That(info.Shape, Is.EqualTo(new long[] { 2, 9 }));
        Assert.That(info.Compressed!.Kept, Is.EqualTo(3));
        var dense = new float[18];
        file.ReadFloat32("m.weight", dense);
        Assert.That(dense, Is.EqualTo(new float[] { 0, 1.5f, 0, 0, 0, 0, 0, 0, 2, 3, 0, 0, 0, 0, 0, 0, 0, 0 }));
        var tail = new float[4];
        file.ReadFloat32("m.weight", 7, tail);   // a range across the row boundary
        Assert.That(tail, Is.EqualTo(new float[] { 0, 2, 3, 0 }));
    }

    [Test]
    public void RoundTripIsBitExactForEveryDtypeAndRange()
    {
        var rng = new Random(TestUtil.FreshSeed());
        foreach (double density in new[] { 1.0, 0.5, 0.1, 0.0 })
        {
            int rows = rng.Next(1, 9), cols = rng.Next(1, 30);
            var f32 = SparseFloats(rng, rows * cols, density);
            var bf16 = Enumerable.Range(0, rows * cols).Select(_ => rng.NextDouble() < density ? (ushort)rng.Next(1, 65536) : (ushort)0).ToArray();
            var u8 = Enumerable.Range(0, rows * cols).Select(_ => rng.NextDouble() < density ? (byte)rng.Next(1, 256) : (byte)0).ToArray();
            string path = Path.Combine(_dir, $"rt-{density}.safetensors");
            var writer = new SafetensorsWriter();
            void Source(byte[] raw, string name, SafetensorsDType dtype) =>
                writer.AddSparseBitmask(name, dtype, rows, cols, (start, dst) => raw.AsSpan((int)start * dtype.SizeInBytes(), dst.Length).CopyTo(dst));
            Source(Bytes(f32), "a.weight", SafetensorsDType.F32);
            Source(Bytes(bf16), "b.weight", SafetensorsDType.BF16);
            Source(u8, "c.weight", SafetensorsDType.U8);
            writer.Write(path);

            using var file = SafetensorsFile.Open(path);
            Assert.That(file.StoredTensors, Has.Count.EqualTo(12));
            Assert.That(file.GetBytes("a.weight").ToArray(), Is.EqualTo(Bytes(f32)), $"F32 at density {density}");
            Assert.That(file.GetBytes("b.weight").ToArray(), Is.EqualTo(Bytes(bf16)), $"BF16 at density {density}");
            Assert.That(file.GetBytes("c.weight").ToArray(), Is.EqualTo(u8), $"U8 at density {density}");
            long kept = f32.Count(v => BitConverter.SingleToInt32Bits(v) != 0);
            Assert.That(file.Get("a.weight").Compressed!.Kept, Is.EqualTo(kept));
            Assert.That(file.Get("a.weight").StoredBytes, Is.EqualTo(SparseBitmask.StoredBytes(rows, cols, kept, 4)));
            for (int trial = 0; trial < 20; trial++)
            {
                int start = rng.Next(rows * cols), n = rng.Next(rows * cols - start + 1);
                var part = new float[n];
                file.ReadFloat32("a.weight", start, part);
                Bitwise.AssertEqual(part, f32.AsSpan(start, n), $"elements [{start}, {start + n})");
                var bfPart = new float[n];
                file.ReadFloat32("b.weight", start, bfPart);
                for (int i = 0; i < n; i++)
                    Assert.That(BitConverter.SingleToInt32Bits(bfPart[i]), Is.EqualTo(bf16[start + i] << 16));
            }
        }
    }

    // ---- malformed files: each refused with the offending tensor's name ----

    private string Malformed(string name, float[] values, byte[] bitmask, long[] maskShape, long[] shape, long[] offsets,
                             SafetensorsDType shapeType = SafetensorsDType.I64, bool withOffsets = true, bool alsoDense = false)
    {
        string path = Path.Combine(_dir, name + ".safetensors");
        var w = new SafetensorsWriter()
            .Add("m.compressed", values, values.Length)
            .Add("m.bitmask", SafetensorsDType.U8, maskShape, bitmask)
            .Add("m.shape", shapeType, new long[] { shape.Length }, shapeType == SafetensorsDType.I64 ? Bytes(shape) : Bytes(shape.Select(s => (float)s).ToArray()));
        if (withOffsets) w.Add("m.row_offsets", SafetensorsDType.I64, new long[] { offsets.Length }, Bytes(offsets));
        if (alsoDense) w.Add("m.weight", new float[4], 2, 2);
        w.Write(path);
        return path;
    }

    private static void AssertRefused(string path, string tensor, string fragment)
    {
        var e = Assert.Throws<SafetensorsException>(() => SafetensorsFile.Open(path).Dispose())!;
        Assert.That(e.TensorName, Is.EqualTo(tensor), e.Message);
        Assert.That(e.Message, Does.Contain(fragment));
    }

    [Test]
    public void MalformedCompressedTensorsAreRefusedWithTheirNames()
    {
        // Good: [[1, 0], [0, 2]] -> bits 0b01 and 0b10, offsets [0, 1].
        byte[] good = { 1, 2 };
        long[] maskShape = { 2, 1 }, shape = { 2, 2 };
        Assert.DoesNotThrow(() => SafetensorsFile.Open(Malformed("good", new[] { 1f, 2f }, good, maskShape, shape, new long[] { 0, 1 })).Dispose());

        AssertRefused(Malformed("count", new[] { 1f, 2f, 3f }, good, maskShape, shape, new long[] { 0, 1 }), "m.compressed", "2 set bits");
        AssertRefused(Malformed("order", new[] { 1f, 2f }, good, maskShape, shape, new long[] { 1, 0 }), "m.row_offsets", "row_offsets[0] = 1");
        AssertRefused(Malformed("maskshape", new[] { 1f, 2f }, good, new long[] { 1, 2 }, shape, new long[] { 0, 1 }), "m.bitmask", "expected U8[2, 1]");
        AssertRefused(Malformed("padding", new[] { 1f, 2f, 3f }, new byte[] { 1, 2 | 4 }, maskShape, shape, new long[] { 0, 1 }), "m.bitmask", "padding bits");
        AssertRefused(Malformed("rank", new[] { 1f, 2f }, good, maskShape, new long[] { 2, 2, 1 }, new long[] { 0, 1 }), "m.shape", "only 2-D");
        AssertRefused(Malformed("shapetype", new[] { 1f, 2f }, good, maskShape, shape, new long[] { 0, 1 }, SafetensorsDType.F32), "m.shape", "expected I64");
        AssertRefused(Malformed("offsets", new[] { 1f, 2f }, good, maskShape, shape, new long[] { 0 }), "m.row_offsets", "expected [2]");
        AssertRefused(Malformed("missing", new[] { 1f, 2f }, good, maskShape, shape, new long[] { 0, 1 }, withOffsets: false), "m.row_offsets", "missing");
        AssertRefused(Malformed("both", new[] { 1f, 2f }, good, maskShape, shape, new long[] { 0, 1 }, alsoDense: true), "m.weight", "both dense");
    }

    // ---- checkpoints ----

    private static BertParameters PrunedBert(int seed, double sparsity)
    {
        var cfg = new BertConfig { VocabSize = 50, HiddenSize = 16, NumAttentionHeads = 2, NumHiddenLayers = 2, IntermediateSize = 36, MaxPositionEmbeddings = 24 };
        var p = new BertParameters(new CpuBackend(), new BertParameterLayout(cfg, BertHeads.PreTraining));
        p.Initialize((ulong)seed);
        var values = TestUtil.Download(p.PrunableValues);
        var rng = new Random(seed);
        for (int i = 0; i < values.Length; i++) if (rng.NextDouble() < sparsity) values[i] = 0f;
        values[0] = -0f;
        p.Backend.CopyFromHost<float>(values, p.PrunableValues);
        return p;
    }

    [Test]
    public void CompressedCheckpointLoadsLikeTheDenseOneAndDecompressesByteForByte()
    {
        int seed = TestUtil.FreshSeed();
        using var p = PrunedBert(seed, 0.7);
        string dense = Path.Combine(_dir, "dense"), saved = Path.Combine(_dir, "saved"), rewritten = Path.Combine(_dir, "rewritten"), back = Path.Combine(_dir, "back");
        BertCheckpoint.Save(dense, p);
        BertCheckpoint.Save(saved, p, compress: true);
        var summary = CompressedCheckpoint.Rewrite(dense, rewritten, compress: true)!;
        Assert.That(CompressedCheckpoint.Rewrite(rewritten, back, compress: false), Is.Null);

        // Saving compressed and compressing a dense save give the same file; decompressing gives the dense one back.
        Assert.That(File.ReadAllBytes(Path.Combine(rewritten, "model.safetensors")), Is.EqualTo(File.ReadAllBytes(Path.Combine(saved, "model.safetensors"))));
        Assert.That(File.ReadAllBytes(Path.Combine(back, "model.safetensors")), Is.EqualTo(File.ReadAllBytes(Path.Combine(dense, "model.safetensors"))));
        Assert.That(File.ReadAllText(Path.Combine(back, "config.json")), Is.EqualTo(File.ReadAllText(Path.Combine(dense, "config.json"))));
        Assert.That(new FileInfo(Path.Combine(saved, "model.safetensors")).Length, Is.LessThan(new FileInfo(Path.Combine(dense, "model.safetensors")).Length));

        Assert.That(summary.Targets, Has.Count.EqualTo(12));
        Assert.That(summary.Targets[0], Does.Not.EndWith(".weight"));
        var sparsity = JsonNode.Parse(File.ReadAllText(Path.Combine(saved, "config.json")))!["quantization_config"]!;
        Assert.That(sparsity["quant_method"]!.GetValue<string>(), Is.EqualTo("compressed-tensors"));
        Assert.That(sparsity["sparsity_config"]!["format"]!.GetValue<string>(), Is.EqualTo("sparse-bitmask"));
        Assert.That(sparsity["sparsity_config"]!["global_sparsity"]!.GetValue<double>(), Is.EqualTo(100 * summary.Sparsity).Within(1e-9));
        Assert.That(summary.Sparsity, Is.InRange(0.6, 0.8));

        var (loaded, report) = BertCheckpoint.Load(saved, new CpuBackend(), BertHeadDetection.Detect(saved));
        using (loaded)
        {
            Assert.That(report.Missing, Is.Empty);
            Assert.That(report.Unexpected, Is.Empty);
            Bitwise.AssertEqual(TestUtil.Download(loaded.Values), TestUtil.Download(p.Values), "parameters loaded from the compressed checkpoint");
        }
    }

    [Test]
    public void CompressedVitCheckpointLoadsBitExactly()
    {
        int seed = TestUtil.FreshSeed();
        var cfg = VitConfig.FromPreset("tiny");
        using var p = new VitParameters(new CpuBackend(), new VitParameterLayout(cfg, VitHeads.Classification(3)));
        p.Initialize((ulong)seed);
        var values = TestUtil.Download(p.PrunableValues);
        for (int i = 0; i < values.Length; i += 3) values[i] = 0f;
        p.Backend.CopyFromHost<float>(values, p.PrunableValues);
        string dir = Path.Combine(_dir, "vit");
        VitCheckpoint.Save(dir, p, compress: true);
        using (var file = SafetensorsFile.Open(Path.Combine(dir, "model.safetensors")))
            Assert.That(file.Tensors.Count(t => t.Compressed != null), Is.EqualTo(6 * cfg.NumHiddenLayers));
        var (loaded, _) = VitCheckpoint.Load(dir, new CpuBackend(), VitHeads.Classification(3));
        using (loaded) Bitwise.AssertEqual(TestUtil.Download(loaded.Values), TestUtil.Download(p.Values), "ViT parameters");
    }
}
