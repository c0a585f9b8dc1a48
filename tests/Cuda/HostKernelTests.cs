using System.Diagnostics;
using NUnit.Framework;

namespace NativeSparsity.Tests.Cuda;

/// <summary>
/// Runs every kernel of kernels/*.cu without a GPU: tests/Cuda/HostEmulation/cuda_host.h emulates the
/// CUDA features they use (threads, warp shuffles and votes, barriers, shared memory) on the host,
/// and kernels_check.cpp compares each kernel on small odd shapes, aligned and unaligned, with float64
/// references (bit for bit where the op is a permutation or the embedding gradient's ordered sum).
/// Needs g++ (C++20) and the source checkout; skipped with the reason otherwise. The parity tests
/// still decide on a real GPU; this catches indexing and arithmetic errors on every CI run.
/// </summary>
public class HostKernelTests
{
    [Test]
    public void EveryKernelMatchesItsFloat64ReferenceUnderHostEmulation()
    {
        string? repo = RepoRoot();
        if (repo == null) Assert.Ignore("the source checkout (NativeSparsity.sln) is not above the test binaries");
        string? compiler = new[] { "/usr/bin/g++", "/usr/local/bin/g++" }.FirstOrDefault(File.Exists);
        if (compiler == null) Assert.Ignore("no g++ to build the host emulation of the kernels");

        string source = Path.Combine(repo!, "tests", "Cuda", "HostEmulation", "kernels_check.cpp");
        string exe = Path.Combine(Path.GetTempPath(), "nsparse-kernels-check-" + Guid.NewGuid().ToString("N"));
        try
        {
            var (buildCode, _, buildErr) = Run(compiler!, $"-std=c++20 -O1 -pthread -Wall -Wno-unknown-pragmas -o {exe} {source}");
            Assert.That(buildCode, Is.Zero, $"g++ could not build the kernel emulation:\n{buildErr}");
            var (code, output, err) = Run(exe, "");
            TestContext.Out.WriteLine(output);
            string[] failures = output.Split('\n').Where(l => l.StartsWith("FAIL", StringComparison.Ordinal)).ToArray();
            Assert.That(failures, Is.Empty, string.Join("\n", failures));
            Assert.That(code, Is.Zero, $"kernel emulation exited with {code}:\n{err}");
            Assert.That(output, Does.Match(@"\n[1-9][0-9]* passed, 0 failed"));
        }
        finally
        {
            if (File.Exists(exe)) File.Delete(exe);
        }
    }

    private static string? RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "NativeSparsity.sln"))) return dir.FullName;
        return null;
    }

    private static (int Code, string Out, string Err) Run(string file, string args)
    {
        var psi = new ProcessStartInfo(file, args) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        string stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, stdout.Result, stderr);
    }
}
