using System.Buffers.Binary;
using NativeSparsity.Models.Vision;
using NativeSparsity.Tests.Engine;
using NUnit.Framework;

namespace NativeSparsity.Tests.Vision;

[TestFixture]
public class IdxFileTests
{
    private string _dir = "";

    [SetUp]
    public void SetUp()
    {
        _dir = Path.Combine(Path.GetTempPath(), "nsparse-idx-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_dir);
    }

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    private string Write(string name, byte[] content)
    {
        string path = Path.Combine(_dir, name);
        File.WriteAllBytes(path, content);
        return path;
    }

    [TestCase(false)]
    [TestCase(true)]
    public void UByteFileRoundTrips(bool gzip)
    {
        var rng = new System.Random(TestUtil.FreshSeed());
        int[] shape = [rng.Next(1, 6), rng.Next(1, 9), rng.Next(1, 7)];
        var data = new byte[shape[0] * shape[1] * shape[2]];
        rng.NextBytes(data);
        // The name says "raw" either way: compression is detected from the content, not the name.
        string path = Write("images.raw", IdxFile.Encode(IdxDataType.UByte, shape, data, gzip));
        var idx = IdxFile.Read(path);
        Assert.That(idx.Type, Is.EqualTo(IdxDataType.UByte));
        Assert.That(idx.Shape, Is.EqualTo(shape));
        Assert.That(idx.AsBytes(), Is.EqualTo(data));
        Assert.That(idx.ElementCount, Is.EqualTo(data.Length));
    }

    [Test]
    public void WiderTypesDecodeBigEndian()
    {
        var ints = new byte[12];
        int[] values = [1, -2, 70000];
        for (int i = 0; i < 3; i++) BinaryPrimitives.WriteInt32BigEndian(ints.AsSpan(4 * i), values[i]);
        var idx = IdxFile.Parse(IdxFile.Encode(IdxDataType.Int32, [3], ints, gzip: true), "ints");
        Assert.That(idx.ToDoubles(), Is.EqualTo(new double[] { 1, -2, 70000 }));
        var floats = new byte[8];
        BinaryPrimitives.WriteSingleBigEndian(floats, 1.5f);
        BinaryPrimitives.WriteSingleBigEndian(floats.AsSpan(4), -0.25f);
        Assert.That(IdxFile.Parse(IdxFile.Encode(IdxDataType.Float32, [1, 2], floats), "floats").ToDoubles(), Is.EqualTo(new double[] { 1.5, -0.25 }));
        var ex = Assert.Throws<InvalidDataException>(() => idx.AsBytes());
        Assert.That(ex!.Message, Does.Contain("ints").And.Contain("ubyte"));
    }

    private static IEnumerable<TestCaseData> Malformed()
    {
        byte[] good = IdxFile.Encode(IdxDataType.UByte, [2, 3], new byte[6]);
        byte[] badMagic = (byte[])good.Clone(); badMagic[1] = 0x01;
        byte[] badType = (byte[])good.Clone(); badType[2] = 0x0A;
        byte[] rankZero = [0, 0, 8, 0];
        byte[] zeroDim = IdxFile.Encode(IdxDataType.UByte, [2, 0], []);
        byte[] negativeDim = IdxFile.Encode(IdxDataType.UByte, [-1], []);
        byte[] truncated = good[..^1];
        byte[] trailing = [.. good, 7];
        byte[] shortHeader = good[..9];
        yield return new TestCaseData(badMagic, "magic").SetName("BadMagic");
        yield return new TestCaseData(badType, "0x0A").SetName("WrongType");
        yield return new TestCaseData(rankZero, "rank 0").SetName("RankZero");
        yield return new TestCaseData(zeroDim, "dimension 1 > 0, found 0").SetName("ZeroDimension");
        yield return new TestCaseData(negativeDim, "found -1").SetName("NegativeDimension");
        yield return new TestCaseData(truncated, "truncated").SetName("Truncated");
        yield return new TestCaseData(trailing, "trailing").SetName("TrailingBytes");
        yield return new TestCaseData(shortHeader, "header").SetName("ShortHeader");
        yield return new TestCaseData(new byte[] { 0, 0 }, "magic").SetName("TooShortForMagic");
    }

    [TestCaseSource(nameof(Malformed))]
    public void MalformedFileIsRejectedNamingTheFile(byte[] content, string expected)
    {
        foreach (bool gzip in new[] { false, true })
        {
            byte[] bytes = content;
            if (gzip)
            {
                var ms = new MemoryStream();
                using (var gz = new System.IO.Compression.GZipStream(ms, System.IO.Compression.CompressionLevel.Fastest, leaveOpen: true)) gz.Write(content);
                bytes = ms.ToArray();
            }
            string path = Write(gzip ? "broken.gz" : "broken-idx", bytes);
            var ex = Assert.Throws<InvalidDataException>(() => IdxFile.Read(path));
            Assert.That(ex!.Message, Does.Contain(path).And.Contain(expected));
        }
    }

    [Test]
    public void CorruptGzipIsRejectedNamingTheFile()
    {
        byte[] gz = IdxFile.Encode(IdxDataType.UByte, [50], new byte[50], gzip: true);
        for (int i = 10; i < gz.Length - 8; i++) gz[i] ^= 0x5A;
        string path = Write("corrupt.gz", gz);
        var ex = Assert.Throws<InvalidDataException>(() => IdxFile.Read(path));
        Assert.That(ex!.Message, Does.Contain(path));
    }

    [Test]
    public void MissingFileIsNamed()
    {
        string path = Path.Combine(_dir, "nothing-here");
        var ex = Assert.Throws<FileNotFoundException>(() => IdxFile.Read(path));
        Assert.That(ex!.Message, Does.Contain(path));
    }
}
