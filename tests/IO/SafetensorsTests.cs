using System.Buffers.Binary;
using System.Text;
using NativeSparsity.Engine.Backends.Cpu;
using NativeSparsity.Engine.IO;
using NativeSparsity.Engine.Tensors;
using NativeSparsity.Tests.Engine;
using NUnit.Framework;

namespace NativeSparsity.Tests.IO;

[TestFixture]
public class SafetensorsTests
{
    private string _dir = "";

    [SetUp]
    public void SetUp()
    {
        _dir = Path.Combine(Path.GetTempPath(), "nsparse-st-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_dir);
    }

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    private static float[] SpecialFloats(Random rng, int n)
    {
        var a = TestUtil.RandomNormals(rng, n);
        int[] bits =
        {
            0x7FC00001, 0x7F800001, unchecked((int)0xFFC12345), 0x7FFFFFFF, // NaNs with payloads
            unchecked((int)0x80000000), 0x00000001, 0x007FFFFF, unchecked((int)0x80000005), // -0, denormals
            0x7F800000, unchecked((int)0xFF800000), 0x7F7FFFFF, 0x00800000, // +-inf, max, min normal
        };
        for (int i = 0; i < bits.Length && i < n; i++) a[i * 7 % n] = BitConverter.Int32BitsToSingle(bits[i]);
        return a;
    }

    [Test]
    public void RoundTripIsBitExact()
    {
        var rng = new Random(TestUtil.FreshSeed());
        var f = SpecialFloats(rng, 7 * 13 * 5);
        var ints = Enumerable.Range(0, 29).Select(_ => rng.Next(int.MinValue, int.MaxValue)).ToArray();
        var bytes = Enumerable.Range(0, 11).Select(_ => (byte)rng.Next(256)).ToArray();
        var bf16 = Enumerable.Range(0, 6).Select(_ => (byte)rng.Next(256)).ToArray();
        string path = Path.Combine(_dir, "a.safetensors");
        new SafetensorsWriter()
            .Add("u8", bytes)
            .Add("w.weight", f, 7, 13, 5)
            .Add("ids", ints, 29)
            .Add("half", SafetensorsDType.BF16, new long[] { 3 }, bf16)
            .Add("scalar", SafetensorsDType.F32, Array.Empty<long>(), BitConverter.GetBytes(-0f))
            .Add("empty", Array.Empty<float>(), 0, 4)
            .Write(path);

        using var file = SafetensorsFile.Open(path);
        Assert.That(file.Tensors.Select(t => t.Name), Is.EquivalentTo(new[] { "u8", "w.weight", "ids", "half", "scalar", "empty" }));
        Assert.That(file.Get("w.weight").Shape, Is.EqualTo(new long[] { 7, 13, 5 }));
        Assert.That(file.Get("empty").Shape, Is.EqualTo(new long[] { 0, 4 }));
        var back = new float[f.Length];
        file.ReadFloat32("w.weight", back);
        for (int i = 0; i < f.Length; i++)
            Assert.That(BitConverter.SingleToInt32Bits(back[i]), Is.EqualTo(BitConverter.SingleToInt32Bits(f[i])), $"element {i}");
        var ib = new int[ints.Length];
        file.ReadInt32("ids", ib);
        Assert.That(ib, Is.EqualTo(ints));
        Assert.That(file.GetBytes("u8").ToArray(), Is.EqualTo(bytes));
        Assert.That(file.GetBytes("half").ToArray(), Is.EqualTo(bf16));
        Assert.That(BitConverter.SingleToInt32Bits(MemoryMarshalFirst(file.GetBytes("scalar"))), Is.EqualTo(unchecked((int)0x80000000)));
        Assert.That((file.DataStart) % 8, Is.EqualTo(0), "header padded to a multiple of 8");
    }

    private static float MemoryMarshalFirst(ReadOnlySpan<byte> b) => BitConverter.ToSingle(b);

    [Test]
    public void OutputDoesNotDependOnInsertionOrder()
    {
        var rng = new Random(TestUtil.FreshSeed());
        var a = TestUtil.RandomFloats(rng, 10);
        var b = new[] { 1, 2, 3 };
        string p1 = Path.Combine(_dir, "1.safetensors"), p2 = Path.Combine(_dir, "2.safetensors");
        new SafetensorsWriter().Add("b", b).Add("a", a).SetMetadata("z", "1").SetMetadata("format", "pt").Write(p1);
        new SafetensorsWriter().SetMetadata("format", "pt").SetMetadata("z", "1").Add("a", a).Add("b", b).Write(p2);
        Assert.That(File.ReadAllBytes(p1), Is.EqualTo(File.ReadAllBytes(p2)));
        Assert.That(Directory.GetFiles(_dir), Has.Length.EqualTo(2), "no temporary files left behind");
    }

    [Test]
    public void MetadataRoundTrips()
    {
        string path = Path.Combine(_dir, "m.safetensors");
        new SafetensorsWriter().SetMetadata("format", "pt").SetMetadata("note", "ünïcode \"quoted\"").Add("x", new float[] { 1, 2 }).Write(path);
        using var file = SafetensorsFile.Open(path);
        Assert.That(file.Metadata["format"], Is.EqualTo("pt"));
        Assert.That(file.Metadata["note"], Is.EqualTo("ünïcode \"quoted\""));
    }

    [Test]
    public void TensorsLoadIntoCpuTensorsWithBf16Conversion()
    {
        var rng = new Random(TestUtil.FreshSeed());
        var f = TestUtil.RandomNormals(rng, 33);
        // BF16 values are the top halves of these floats, so the exact F32 result is known.
        var bf = new byte[f.Length * 2];
        var expected = new float[f.Length];
        for (int i = 0; i < f.Length; i++)
        {
            ushort top = (ushort)(BitConverter.SingleToInt32Bits(f[i]) >>> 16);
            BinaryPrimitives.WriteUInt16LittleEndian(bf.AsSpan(i * 2), top);
            expected[i] = BitConverter.Int32BitsToSingle(top << 16);
        }
        string path = Path.Combine(_dir, "t.safetensors");
        new SafetensorsWriter().Add("bf", SafetensorsDType.BF16, new long[] { 3, 11 }, bf).Add("f", f, 33).Write(path);
        using var backend = new CpuBackend();
        using var file = SafetensorsFile.Open(path);
        var t = file.Load("bf", backend);
        Assert.That(t.Shape.ToArray(), Is.EqualTo(new[] { 3, 11 }));
        Assert.That(TestUtil.Download(t), Is.EqualTo(expected));
        var dst = backend.Allocate(DType.F32, 33);
        file.ReadInto("f", dst);
        Assert.That(TestUtil.Download(dst), Is.EqualTo(f));
        Assert.Throws<SafetensorsException>(() => file.ReadInto("f", backend.Allocate(DType.F32, 32)));
        Assert.Throws<SafetensorsException>(() => file.ReadInto("f", backend.Allocate(DType.I32, 33)));
        var e = Assert.Throws<SafetensorsException>(() => file.ReadInto("bf", backend.Allocate(DType.F32, 11, 3)))!;
        Assert.That(e.Message, Does.Contain("shape [3, 11] in the file, [11, 3] expected"));
        var flat = backend.Allocate(DType.F32, 33);
        file.ReadInto("bf", flat, requireSameShape: false);
        Assert.That(TestUtil.Download(flat), Is.EqualTo(expected));

        // and a tensor written from a backend tensor comes back the same
        string path2 = Path.Combine(_dir, "t2.safetensors");
        new SafetensorsWriter().Add("dst", dst).Write(path2);
        using var file2 = SafetensorsFile.Open(path2);
        var back = new float[33];
        file2.ReadFloat32("dst", back);
        Assert.That(back, Is.EqualTo(f));
    }

    [Test]
    public void TensorsLargerThanOneChunkRoundTripThroughBackendTensors()
    {
        var rng = new Random(TestUtil.FreshSeed());
        int n = 3 * ((1 << 21) / 3 + 2); // just over 2 * 2^20: the reader and writer move 2^20 elements at a time
        var f = TestUtil.RandomNormals(rng, n);
        using var backend = new CpuBackend();
        var t = TestUtil.Upload(backend, f, 3, n / 3);
        var bf = new byte[n * 2];
        for (int i = 0; i < n; i++) BinaryPrimitives.WriteUInt16LittleEndian(bf.AsSpan(i * 2), (ushort)(BitConverter.SingleToInt32Bits(f[i]) >>> 16));
        string path = Path.Combine(_dir, "big.safetensors");
        new SafetensorsWriter().Add("t", t).Add("bf", SafetensorsDType.BF16, new long[] { n }, bf).Write(path);
        using var file = SafetensorsFile.Open(path);
        Assert.That(file.Get("t").Shape, Is.EqualTo(new long[] { 3, n / 3 }));
        Assert.That(TestUtil.Download(file.Load("t", backend)), Is.EqualTo(f));
        var fromBf = TestUtil.Download(file.Load("bf", backend));
        for (int i = 0; i < n; i += 9973)
            Assert.That(fromBf[i], Is.EqualTo(BitConverter.Int32BitsToSingle(BitConverter.SingleToInt32Bits(f[i]) & unchecked((int)0xFFFF0000))), $"element {i}");
        Assert.That(fromBf[n - 1], Is.EqualTo(BitConverter.Int32BitsToSingle(BitConverter.SingleToInt32Bits(f[n - 1]) & unchecked((int)0xFFFF0000))));
        var tail = new float[5];
        file.ReadFloat32("t", n - 5, tail);
        Assert.That(tail, Is.EqualTo(f[^5..]));
    }

    // ---- malformed files ----------------------------------------------------------------------

    private string WriteRaw(string name, string headerJson, int dataBytes, ulong? headerLengthOverride = null, int truncateBy = 0)
    {
        byte[] header = Encoding.UTF8.GetBytes(headerJson);
        var bytes = new byte[8 + header.Length + dataBytes];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, headerLengthOverride ?? (ulong)header.Length);
        header.CopyTo(bytes, 8);
        string path = Path.Combine(_dir, name);
        File.WriteAllBytes(path, bytes.AsSpan(0, bytes.Length - truncateBy).ToArray());
        return path;
    }

    private static SafetensorsException ExpectBad(string path, string fragment)
    {
        var e = Assert.Throws<SafetensorsException>(() => SafetensorsFile.Open(path).Dispose())!;
        Assert.That(e.Message, Does.Contain(Path.GetFileName(path)), "message names the file");
        Assert.That(e.Message, Does.Contain(fragment).IgnoreCase);
        TestContext.Out.WriteLine(e.Message);
        return e;
    }

    private const string Good = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[8,12]}}";

    [Test]
    public void WellFormedRawFileOpens()
    {
        using var f = SafetensorsFile.Open(WriteRaw("ok.safetensors", Good + "   ", 12));
        Assert.That(f.Tensors, Has.Count.EqualTo(2));
    }

    [Test]
    public void ShorterThanEightBytes()
    {
        string path = Path.Combine(_dir, "tiny.safetensors");
        File.WriteAllBytes(path, new byte[5]);
        ExpectBad(path, "shorter than the 8-byte");
    }

    [Test]
    public void TruncatedHeader() => ExpectBad(WriteRaw("trunc-header.safetensors", Good, 0, truncateBy: 40), "past the end");

    [Test]
    public void TruncatedData()
    {
        var e = ExpectBad(WriteRaw("trunc-data.safetensors", Good, 12, truncateBy: 3), "past the end of the 9-byte data buffer");
        Assert.That(e.TensorName, Is.EqualTo("b"));
    }

    [Test]
    public void OversizedHeaderLength() => ExpectBad(WriteRaw("huge.safetensors", Good, 12, headerLengthOverride: 1UL << 40), "exceeds the limit");

    [Test]
    public void GarbageJson() => ExpectBad(WriteRaw("garbage.safetensors", "{\"a\": {dtype: F32]]", 0), "not valid JSON");

    [Test]
    public void NotAJsonObject() => ExpectBad(WriteRaw("array.safetensors", "[1,2,3]", 0), "must start with");

    [Test]
    public void InvalidUtf8()
    {
        string path = WriteRaw("utf8.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}}", 0);
        var bytes = File.ReadAllBytes(path);
        bytes[10] = 0xFF; // inside the name
        File.WriteAllBytes(path, bytes);
        ExpectBad(path, "UTF-8");
    }

    [Test]
    public void UnknownDtype()
    {
        var e = ExpectBad(WriteRaw("dtype.safetensors", "{\"a\":{\"dtype\":\"F33\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8), "unknown dtype 'F33'");
        Assert.That(e.TensorName, Is.EqualTo("a"));
    }

    [Test]
    public void ShapeSizeMismatch() =>
        ExpectBad(WriteRaw("shape.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8), "needs 12 bytes");

    [Test]
    public void OverlappingRanges()
    {
        string json = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}";
        var e = ExpectBad(WriteRaw("overlap.safetensors", json, 12), "overlap");
        Assert.That(e.Message, Does.Contain("'a'").And.Contain("'b'"));
    }

    [Test]
    public void HoleInBuffer()
    {
        string json = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}";
        ExpectBad(WriteRaw("hole.safetensors", json, 12), "hole of 4 bytes");
    }

    [Test]
    public void TrailingBytesAfterLastTensor() => ExpectBad(WriteRaw("trailing.safetensors", Good, 16), "trailing bytes");

    [Test]
    public void OffsetsPastTheEnd() =>
        ExpectBad(WriteRaw("past.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8), "past the end");

    [Test]
    public void DuplicateNames()
    {
        string json = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}";
        ExpectBad(WriteRaw("dup.safetensors", json, 8), "appears twice");
    }

    [Test]
    public void NegativeOrFractionalShape()
    {
        ExpectBad(WriteRaw("neg.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,0]}}", 0), "non-negative");
        ExpectBad(WriteRaw("frac.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,6]}}", 6), "non-negative");
    }

    [Test]
    public void BadMetadata() =>
        ExpectBad(WriteRaw("meta.safetensors", "{\"__metadata__\":{\"k\":3}}", 0), "must be a string");

    [Test]
    public void MissingFileIsOurError() => ExpectBad(Path.Combine(_dir, "missing.safetensors"), "cannot read");

    [Test]
    public void ReadingTheWrongTypeOrNameFails()
    {
        using var f = SafetensorsFile.Open(WriteRaw("ok2.safetensors", Good, 12));
        var e = Assert.Throws<SafetensorsException>(() => f.ReadFloat32("b", new float[1]))!;
        Assert.That(e.Message, Does.Contain("ok2.safetensors").And.Contain("'b'"));
        Assert.Throws<SafetensorsException>(() => f.Get("nope"));
        Assert.Throws<SafetensorsException>(() => f.ReadFloat32("a", new float[3]));
        Assert.Throws<SafetensorsException>(() => f.ReadFloat32("a", new float[1]), "a short destination is not a silent partial read");
        Assert.Throws<SafetensorsException>(() => f.ReadFloat32("a", 1, new float[2]), "range past the end");
        var part = new float[1];
        f.ReadFloat32("a", 1, part);
    }
}
