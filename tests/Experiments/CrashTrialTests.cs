using System.Diagnostics;
using NUnit.Framework;

namespace NativeSparsity.Tests.Experiments;

/// <summary>
/// The short crash trial: scripts/crash-trial.sh with 3 SIGKILLs during pretrain and 3 during study
/// essential's cells, each resumed and compared bit for bit (timing columns aside) with an uninterrupted
/// run, plus two writers on one folder. The long trial's figures are in docs/RELIABILITY.md.
/// </summary>
[NonParallelizable] // spawns several processes
public class CrashTrialTests
{
    [Test]
    public void ThreeKillsEachLeaveIdenticalResults_AndASecondWriterIsRefused()
    {
        if (!OperatingSystem.IsLinux()) Assert.Ignore("the crash trial is a bash script sending SIGKILL (Linux)");
        string? repo = null;
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null && repo == null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "NativeSparsity.sln"))) repo = dir.FullName;
        Assert.That(repo, Is.Not.Null, "the tests run from inside the repository");
        // The program as built beside the tests (the test project references it).
        string dll = Path.Combine(AppContext.BaseDirectory, "nsparse.dll");
        string work = Path.Combine(Path.GetTempPath(), "nsparse-crash-test-" + Guid.NewGuid().ToString("N"));
        var psi = new ProcessStartInfo("bash")
        {
            RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = repo,
        };
        foreach (string a in new[] { Path.Combine(repo!, "scripts", "crash-trial.sh"), "--kills", "3", "--study-kills", "3", "--steps", "300",
                                     "--seed", "11", "--work", work, "--nsparse", $"dotnet {dll}" })
            psi.ArgumentList.Add(a);
        try
        {
            using var p = Process.Start(psi)!;
            var stderr = p.StandardError.ReadToEndAsync();
            string stdout = p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            string all = stdout + stderr.Result;
            TestContext.Out.WriteLine(all);
            Assert.That(p.ExitCode, Is.EqualTo(0), all);
            Assert.That(all, Does.Contain("pretrain: 3 SIGKILLs, identical").And.Contain("study essential: 3 SIGKILLs, identical")
                                 .And.Contain("crash trial passed"));
            Assert.That(all.Split('\n').Count(l => l.Contains("  refused in")), Is.EqualTo(2), all);
        }
        finally { if (Directory.Exists(work)) Directory.Delete(work, true); }
    }
}
