using System.Diagnostics;
using NativeSparsity.Engine.IO;
using NativeSparsity.Experiments.Training;
using NUnit.Framework;

namespace NativeSparsity.Tests.IO;

public class FolderLockTests
{
    private static string TempFolder() => Path.Combine(Path.GetTempPath(), "nsparse-lock-" + Guid.NewGuid().ToString("N"));

    [Test]
    public void SecondWriterIsRefusedWithTheHolder_AndTheLockIsFreeAfterDispose()
    {
        string folder = TempFolder();
        try
        {
            using (var first = FolderLock.Acquire(folder, "pretrain"))
            {
                Assert.That(FolderLock.TryAcquire(folder, "other"), Is.Null);
                var e = Assert.Throws<FolderLockedException>(() => FolderLock.Acquire(folder, "finetune"));
                Assert.That(e!.Message, Does.Contain(Path.GetFullPath(folder)).And.Contain($"pid {Environment.ProcessId}").And.Contain("'pretrain'").And.Contain("UTC"));
            }
            using var again = FolderLock.Acquire(folder, "finetune");
            Assert.That(FolderLock.DescribeHolder(folder), Does.Contain("'finetune'"));
        }
        finally { Directory.Delete(folder, true); }
    }

    [Test]
    public void WaitingAcquireTakesTheLockOnceTheHolderLetsGo()
    {
        string folder = TempFolder();
        try
        {
            var held = FolderLock.Acquire(folder, "pretrain");
            var messages = new List<string>();
            var waiter = Task.Run(() => FolderLock.AcquireWaiting(folder, "study essential", m => { lock (messages) messages.Add(m); }, TimeSpan.FromMilliseconds(20)));
            Thread.Sleep(200);
            Assert.That(waiter.IsCompleted, Is.False, "the waiter must wait while the lock is held");
            held.Dispose();
            using var got = waiter.Wait(TimeSpan.FromSeconds(10)) ? waiter.Result : throw new TimeoutException("the waiter never got the lock");
            Assert.That(messages, Has.Count.EqualTo(1).And.Some.Contains("waiting for"));
        }
        finally { Directory.Delete(folder, true); }
    }

    /// <summary>The lock is the OS's: another process holding it blocks us, and its death releases it (no stale lock).</summary>
    [Test]
    public void AnotherProcessHoldsTheLockUntilItDies()
    {
        if (!File.Exists("/usr/bin/flock")) Assert.Ignore("util-linux flock is not installed; cross-process locking not checked here");
        string folder = TempFolder();
        Directory.CreateDirectory(folder);
        string lockFile = Path.Combine(folder, FolderLock.LockFile);
        // -o: the lock stays with flock itself, not with the sleep it runs, so killing flock must release it.
        using var holder = Process.Start(new ProcessStartInfo("/usr/bin/flock", new[] { "-x", "-o", lockFile, "sleep", "60" }) { UseShellExecute = false })!;
        try
        {
            // Until flock(1) has started and taken the lock, we may get it ourselves: give it back and look again.
            bool heldByOther = false;
            for (var deadline = DateTime.UtcNow.AddSeconds(20); !heldByOther && DateTime.UtcNow < deadline; Thread.Sleep(50))
            {
                using var probe = FolderLock.TryAcquire(folder, "probe");
                heldByOther = probe == null;
            }
            Assert.That(heldByOther, Is.True, "the flock process should hold the lock");
            holder.Kill(entireProcessTree: true);
            holder.WaitForExit();
            using var got = FolderLock.TryAcquire(folder, "pretrain");
            Assert.That(got, Is.Not.Null, "released when its holder died");
        }
        finally
        {
            if (!holder.HasExited) holder.Kill(true);
            Directory.Delete(folder, true);
        }
    }

    [Test]
    public void PretrainRefusesAFolderAnotherWriterHolds_AndWritesNothing()
    {
        string folder = TempFolder();
        try
        {
            using var held = FolderLock.Acquire(folder, "pretrain");
            Assert.Throws<FolderLockedException>(() => PretrainRun.Run(new PretrainRunOptions { OutputFolder = folder, Quiet = true }));
            Assert.That(Directory.GetFileSystemEntries(folder).Select(Path.GetFileName),
                Is.EquivalentTo(new[] { FolderLock.LockFile, FolderLock.HolderFile }));
        }
        finally { Directory.Delete(folder, true); }
    }

    [Test]
    public void CheckpointListingIgnoresAWritersTemporaryAndAsideFolders()
    {
        string folder = TempFolder();
        try
        {
            foreach (string name in new[] { "step-0000010", "step-0000020.tmp-0123abcd", "step-0000020.old-4567", "step-x" })
            {
                Directory.CreateDirectory(Path.Combine(folder, name));
                File.WriteAllText(Path.Combine(folder, name, BertPretrainer.StateFile), "{}");
            }
            Assert.That(PretrainRun.LatestCheckpoint(folder), Is.EqualTo(Path.Combine(folder, "step-0000010")));
            Assert.That(PretrainRun.CheckpointFolders(folder).Select(c => c.Step), Is.EqualTo(new long[] { 10 }));
            Assert.DoesNotThrow(() => PretrainRun.Prune(folder, 1, 0));
            Assert.That(Directory.Exists(Path.Combine(folder, "step-0000020.tmp-0123abcd")), "another writer's temporary folder is not ours to delete");
        }
        finally { Directory.Delete(folder, true); }
    }
}
