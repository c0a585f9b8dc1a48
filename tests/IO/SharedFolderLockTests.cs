using NativeSparsity.Engine.IO;
using NativeSparsity.Experiments;
using NativeSparsity.Models.BuiltIn;
using NativeSparsity.Models.Data.Corpus;
using NUnit.Framework;

namespace NativeSparsity.Tests.IO;

/// <summary>
/// Locks on folders that are replaced whole (import, compress, decompress: the lock sits beside the
/// target) and on shared caches (tokenised corpora, converted built-in models: the second waits, then reuses).
/// </summary>
[NonParallelizable] // redirects Console.Error
public class SharedFolderLockTests
{
    private string _dir = null!;

    [SetUp]
    public void SetUp() => Directory.CreateDirectory(_dir = Path.Combine(Path.GetTempPath(), "nsparse-shared-lock-" + Guid.NewGuid().ToString("N")));

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, true);

    private static (int Code, string Err) Invoke(params string[] args)
    {
        var saved = Console.Error;
        var err = new StringWriter();
        Console.SetError(err);
        try { return (Program.Main(args), err.ToString()); }
        finally { Console.SetError(saved); }
    }

    [TestCase("import")]
    [TestCase("compress")]
    [TestCase("decompress")]
    public void ASecondWriterOfAReplacedFolderIsRefusedNamingTheHolder(string command)
    {
        string target = Path.Combine(_dir, "out");
        string source = Path.Combine(_dir, "missing-source");
        using var held = FolderLock.AcquireReplaced(target, "test holder");
        Assert.That(Directory.Exists(target), Is.False, "the lock beside a target does not create it");
        var (code, err) = command == "import"
            ? Invoke("import", "onnx", Path.Combine(_dir, "missing.onnx"), "--vocab", Path.Combine(_dir, "missing.txt"), "--out", target)
            : Invoke(command, source, "--out", target);
        Assert.That(code, Is.EqualTo(2), err);
        Assert.That(err.Trim().Split('\n'), Has.Length.EqualTo(1), err);
        Assert.That(err, Does.Contain("error: " + Path.GetFullPath(target) + " is in use").And.Contain("'test holder'").And.Contain($"pid {Environment.ProcessId}"));
        Assert.That(Directory.Exists(target), Is.False, "the refused writer wrote nothing");
    }

    [Test]
    public void TheReplacedFolderLockSurvivesTheTargetBeingReplaced()
    {
        string target = Path.Combine(_dir, "out");
        using (var first = FolderLock.AcquireReplaced(target, "first"))
        {
            AtomicFolder.Write(target, tmp => File.WriteAllText(Path.Combine(tmp, "a"), "1"));
            AtomicFolder.Write(target, tmp => File.WriteAllText(Path.Combine(tmp, "a"), "2"));
            Assert.That(FolderLock.TryAcquireReplaced(target, "second"), Is.Null, "still held after two replacements");
        }
        using var again = FolderLock.TryAcquireReplaced(target, "second");
        Assert.That(again, Is.Not.Null);
        Assert.That(Directory.GetFileSystemEntries(target).Select(Path.GetFileName), Is.EqualTo(new[] { "a" }), "no lock file inside the target");
    }

    private sealed class CountingSource(IReadOnlyList<string> docs) : IDocumentSource
    {
        public int Reads;
        public string Description => "counting list";
        public IEnumerable<string> Documents() { Interlocked.Increment(ref Reads); return docs; }
        public double? Progress => null;
    }

    [Test]
    public void TwoPreparationsStartedTogetherBuildTheCorpusOnce_AndBothUseIt()
    {
        var docs = Enumerable.Range(0, 2000).Select(i => $"document {i} tells of item {i % 31} and item {i % 7}").ToList();
        var source = new CountingSource(docs);
        string cache = Path.Combine(_dir, "cache");
        using var start = new Barrier(2);
        var runs = Enumerable.Range(0, 2).Select(_ => Task.Run(() =>
        {
            start.SignalAndWait();
            return PretrainingData.Prepare(source, cache, vocabSize: 64, fraction: 1.0, seed: 0);
        })).ToArray();
        Assert.That(Task.WaitAll(runs, TimeSpan.FromMinutes(2)), Is.True, "both preparations end");
        using var a = runs[0].Result;
        using var b = runs[1].Result;
        Assert.That(new[] { a.Reused, b.Reused }, Is.EquivalentTo(new[] { false, true }), "one built, the other reused");
        Assert.That(source.Reads, Is.EqualTo(2), "the source read twice (vocabulary count, tokenising), by one builder only");
        Assert.That(b.Corpus.TokenCount, Is.EqualTo(a.Corpus.TokenCount));
    }

    [Test]
    public void ABuiltInModelConversionWaitsForTheOneUnderWay()
    {
        var model = BuiltInModels.All[0];
        string cache = Path.Combine(_dir, "models"), empty = Path.Combine(_dir, "no-packages");
        Directory.CreateDirectory(empty);
        var said = new List<string>();
        var held = FolderLock.AcquireReplaced(Path.Combine(cache, model.Name), "convert (test)");
        var waiter = Task.Run(() => BuiltInModels.Ensure(model, cache, m => { lock (said) said.Add(m); }, packageRoots: new[] { empty }));
        for (var deadline = DateTime.UtcNow.AddSeconds(30); DateTime.UtcNow < deadline; Thread.Sleep(20))
            lock (said) if (said.Count > 0) break;
        Assert.That(waiter.IsCompleted, Is.False, "the second converter waits while the first holds the lock");
        lock (said) Assert.That(said, Has.Some.Contains("waiting for").And.Some.Contains("'convert (test)'"));
        held.Dispose();
        // With no package to convert from, the waiter's own attempt then fails as it would have alone.
        var e = Assert.Throws<AggregateException>(() => waiter.Wait(TimeSpan.FromMinutes(1)))!;
        Assert.That(e.InnerException, Is.TypeOf<FileNotFoundException>());
    }
}
