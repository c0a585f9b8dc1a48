using NativeSparsity.Engine.Backends.Cuda;
using NativeSparsity.Engine.Backends.Cuda.Native;
using NUnit.Framework;

namespace NativeSparsity.Tests.Cuda;

/// <summary>
/// Compiles every embedded kernel file to PTX with NVRTC, for Ampere and Hopper, with the options
/// the engine uses, and fails on any error or warning. Needs no GPU: CI fetches Debian's NVRTC into
/// .tools/nvrtc (scripts/fetch-nvrtc.sh). Where no NVRTC can be found, the tests report themselves
/// skipped with the reason.
/// </summary>
public class NvrtcCompileTests
{
    private static readonly int[] Architectures = [80, 90];

    public static IEnumerable<TestCaseData> Cases()
    {
        foreach (string file in KernelSources.KernelFiles)
            foreach (int arch in Architectures)
                yield return new TestCaseData(file, arch).SetName($"Compiles_{file.Replace('.', '_')}_compute_{arch}");
    }

    private static void RequireNvrtc()
    {
        if (!CudaLibraries.TryLoad(CudaLibrary.Nvrtc, out _, out string? error))
            Assert.Ignore($"NVRTC is not available, kernels not compiled: {error}");
    }

    [Test]
    public void EveryOpFamilyHasAKernelFile()
    {
        string[] expected = ["adamw.cu", "attention.cu", "bias.cu", "crossentropy.cu", "dropout.cu", "elementwise.cu",
                             "embedding.cu", "gelu.cu", "layernorm.cu", "radixselect.cu", "reduction.cu", "tanh.cu"];
        Assert.That(KernelSources.KernelFiles, Is.EquivalentTo(expected));
        Assert.That(KernelSources.Headers.Keys, Does.Contain("common.cuh").And.Contain("philox.cuh"));
    }

    [Test]
    public void NvrtcTargetsAmpereAndHopper()
    {
        RequireNvrtc();
        var (major, minor) = Nvrtc.Version();
        TestContext.Out.WriteLine($"NVRTC {major}.{minor} from {CudaLibraries.PathOf(CudaLibrary.Nvrtc)}");
        Assert.That(Nvrtc.SupportedArchs(), Does.Contain(80).And.Contain(90));
    }

    [TestCaseSource(nameof(Cases))]
    public void CompilesWithoutWarnings(string file, int arch)
    {
        RequireNvrtc();
        var options = KernelCompiler.CompileOptions($"--gpu-architecture=compute_{arch}");
        var result = Nvrtc.Compile(KernelSources.Read(file), file, KernelSources.Headers, options);
        Assert.That(result.Succeeded, Is.True, $"{file} for compute_{arch} failed to compile:\n{result.Log}");
        Assert.That(result.Log, Does.Not.Contain("warning").IgnoreCase, $"{file} for compute_{arch} compiled with warnings:\n{result.Log}");
        Assert.That(result.IsCubin, Is.False);
        string ptx = System.Text.Encoding.ASCII.GetString(result.Image);
        Assert.That(ptx, Does.Contain($".target sm_{arch}"), "PTX for the wrong target");
        foreach (string kernel in KernelCompiler.EntryPoints(KernelSources.Read(file)))
            Assert.That(ptx, Does.Contain($".entry {kernel}("), $"{file}: kernel {kernel} is missing from the PTX");
    }

    [Test]
    public void CompileErrorShowsTheLogWithTheFileName()
    {
        RequireNvrtc();
        var result = Nvrtc.Compile("extern \"C\" __global__ void broken(float* x) { x[0] = undefined_name; }",
                                   "broken.cu", KernelSources.Headers, KernelCompiler.CompileOptions("--gpu-architecture=compute_80"));
        Assert.That(result.Succeeded, Is.False);
        Assert.That(result.Log, Does.Contain("broken.cu").And.Contain("undefined_name"));
    }
}
