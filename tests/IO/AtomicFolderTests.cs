using NativeSparsity.Engine.IO;
using NUnit.Framework;

namespace NativeSparsity.Tests.IO;

[TestFixture]
public class AtomicFolderTests
{
    private string _dir = "";

    [SetUp]
    public void SetUp()
    {
        _dir = Path.Combine(Path.GetTempPath(), "nsparse-af-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_dir);
    }

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    [Test]
    public void WritesAndReplacesAFolder()
    {
        string target = Path.Combine(_dir, "ckpt");
        AtomicFolder.Write(target, tmp => File.WriteAllText(Path.Combine(tmp, "a.txt"), "one"));
        Assert.That(File.ReadAllText(Path.Combine(target, "a.txt")), Is.EqualTo("one"));
        AtomicFolder.Write(target, tmp => File.WriteAllText(Path.Combine(tmp, "b.txt"), "two"));
        Assert.That(File.Exists(Path.Combine(target, "a.txt")), Is.False, "old contents are gone");
        Assert.That(File.ReadAllText(Path.Combine(target, "b.txt")), Is.EqualTo("two"));
        Assert.That(Directory.GetDirectories(_dir), Is.EqualTo(new[] { target }), "no temporary or aside folders left");
    }

    [Test]
    public void AFailedBuildLeavesTheOldFolderAndNoTemporary()
    {
        string target = Path.Combine(_dir, "ckpt");
        AtomicFolder.Write(target, tmp => File.WriteAllText(Path.Combine(tmp, "a.txt"), "one"));
        Assert.Throws<InvalidOperationException>(() => AtomicFolder.Write(target, tmp =>
        {
            File.WriteAllText(Path.Combine(tmp, "half.txt"), "half");
            throw new InvalidOperationException("crash while building");
        }));
        Assert.That(File.ReadAllText(Path.Combine(target, "a.txt")), Is.EqualTo("one"));
        Assert.That(Directory.GetDirectories(_dir), Is.EqualTo(new[] { target }));
    }

    [Test]
    public void RecoverRestoresAFolderRenamedAsideBeforeACrash()
    {
        string target = Path.Combine(_dir, "ckpt");
        // The state a crash between "rename aside" and "rename into place" leaves behind.
        string aside = target + ".old-0123";
        string temp = target + ".tmp-4567";
        Directory.CreateDirectory(aside);
        File.WriteAllText(Path.Combine(aside, "a.txt"), "one");
        Directory.CreateDirectory(temp);
        Assert.That(AtomicFolder.Recover(target), Is.True);
        Assert.That(File.ReadAllText(Path.Combine(target, "a.txt")), Is.EqualTo("one"));
        Assert.That(Directory.GetDirectories(_dir), Is.EqualTo(new[] { target }));
        Assert.That(AtomicFolder.Recover(target), Is.False);
    }

    [Test]
    public void AtomicFileReplacesContentsAndLeavesNoTemporary()
    {
        string path = Path.Combine(_dir, "f.bin");
        AtomicFile.Write(path, s => s.Write(new byte[] { 1, 2, 3 }));
        AtomicFile.Write(path, s => s.Write(new byte[] { 4 }));
        Assert.That(File.ReadAllBytes(path), Is.EqualTo(new byte[] { 4 }));
        Assert.Throws<IOException>(() => AtomicFile.Write(path, _ => throw new IOException("disk full")));
        Assert.That(File.ReadAllBytes(path), Is.EqualTo(new byte[] { 4 }));
        Assert.That(Directory.GetFiles(_dir), Is.EqualTo(new[] { path }));
    }
}
