using NativeSparsity.Engine.Backends;
using NativeSparsity.Engine.Backends.Cuda;
using NativeSparsity.Engine.Backends.Cuda.Native;
using NUnit.Framework;

namespace NativeSparsity.Tests.Cuda;

/// <summary>The parts of the CUDA backend that run without a GPU: library search, device selection, caches.</summary>
[NonParallelizable]
public class CudaInfrastructureTests
{
    [Test]
    public void ResolverTriesTheEnvironmentFolderFirstThenVersionedSonames()
    {
        string? saved = Environment.GetEnvironmentVariable(CudaLibraries.LibDirVariable);
        try
        {
            Environment.SetEnvironmentVariable(CudaLibraries.LibDirVariable, "/opt/a:/opt/b");
            var candidates = CudaLibraries.Candidates(CudaLibrary.Cublas).ToList();
            Assert.That(candidates[0], Is.EqualTo("/opt/a/libcublas.so.13"));
            Assert.That(candidates.IndexOf("/opt/b/libcublas.so.11"), Is.LessThan(candidates.IndexOf("libcublas.so.13")));
            Assert.That(candidates.IndexOf("libcublas.so.13"), Is.LessThan(candidates.IndexOf("libcublas.so.12")));
            Assert.That(candidates.IndexOf("libcublas.so.12"), Is.LessThan(candidates.IndexOf("/usr/local/cuda/lib64/libcublas.so.13")));
            var nvrtc = CudaLibraries.Candidates(CudaLibrary.Nvrtc).ToList();
            Assert.That(nvrtc, Does.Contain("libnvrtc.so.11.2"), "Debian ships only the 11.2 soname");
        }
        finally
        {
            Environment.SetEnvironmentVariable(CudaLibraries.LibDirVariable, saved);
        }
    }

    [Test]
    public void FactoryBuildsTheCpuAndRejectsUnknownDevices()
    {
        using (var cpu = BackendFactory.Create("cpu", out string description))
            Assert.That(description, Does.StartWith("cpu"));
        Assert.That(() => BackendFactory.Create("tpu", out _), Throws.ArgumentException.With.Message.Contains("--device tpu"));
        Assert.That(() => BackendFactory.Create("cuda:x", out _), Throws.ArgumentException.With.Message.Contains("cuda:N"));
    }

    [Test]
    public void AutoSaysWhatItPickedAndCudaSaysWhatIsMissing()
    {
        using var auto = BackendFactory.Create("auto", out string description);
        if (auto is CudaBackend)
        {
            Assert.That(description, Does.Contain("cuda:0").And.Contain("auto"));
            return;
        }
        Assert.That(description, Does.StartWith("cpu").And.Contain("no usable GPU"));
        var e = Assert.Throws<CudaUnavailableException>(() => BackendFactory.Create("cuda", out _))!;
        Assert.That(e.Message, Does.Contain("libcuda").Or.Contain("device").Or.Contain("libnvrtc").Or.Contain("libcublas"));
        TestContext.Out.WriteLine(e.Message);
    }

    [Test]
    public void SizeClassesBoundTheWaste()
    {
        Assert.That(DeviceAllocator.SizeClass(1), Is.EqualTo(512));
        Assert.That(DeviceAllocator.SizeClass(513), Is.EqualTo(1024));
        Assert.That(DeviceAllocator.SizeClass(1 << 20), Is.EqualTo(1 << 20));
        foreach (long bytes in new long[] { (1 << 20) + 1, 3_000_000, 340_000_000, 1L << 33 })
        {
            long c = DeviceAllocator.SizeClass(bytes);
            Assert.That(c, Is.GreaterThanOrEqualTo(bytes));
            Assert.That(c, Is.LessThanOrEqualTo(bytes + bytes / 8), $"class {c} for {bytes}");
            Assert.That(DeviceAllocator.SizeClass(c), Is.EqualTo(c), "a class size is its own class");
        }
    }

    [Test]
    public void CompilerBuildsCubinsForHopperAndCachesThemOnDisk()
    {
        if (!CudaLibraries.TryLoad(CudaLibrary.Nvrtc, out _, out string? error))
            Assert.Ignore($"NVRTC is not available: {error}");
        string cache = Path.Combine(Path.GetTempPath(), "nsparse-kernel-cache-" + Guid.NewGuid().ToString("N"));
        try
        {
            var first = new KernelCompiler(9, 0, cache);
            Assert.That(first.ArchitectureOption, Is.EqualTo("--gpu-architecture=sm_90"));
            var images = KernelSources.KernelFiles.ToDictionary(f => f, first.Image);
            Assert.That(first.Compilations, Is.EqualTo(KernelSources.KernelFiles.Count));
            // ELF magic: NVRTC produced machine code (ptxas ran), not just PTX.
            foreach (var (file, image) in images) Assert.That(image[..4], Is.EqualTo(new byte[] { 0x7f, (byte)'E', (byte)'L', (byte)'F' }), file);
            var second = new KernelCompiler(9, 0, cache);
            foreach (var (file, image) in images) Assert.That(second.Image(file), Is.EqualTo(image), file);
            Assert.That(second.Compilations, Is.Zero, "the second compiler should load everything from the cache");
        }
        finally
        {
            if (Directory.Exists(cache)) Directory.Delete(cache, recursive: true);
        }
    }

    [Test]
    public void DeviceNewerThanNvrtcGetsPtxForTheNewestKnownArchitecture()
    {
        if (!CudaLibraries.TryLoad(CudaLibrary.Nvrtc, out _, out string? error))
            Assert.Ignore($"NVRTC is not available: {error}");
        int newest = Nvrtc.SupportedArchs().Max();
        var compiler = new KernelCompiler(99, 9, Path.GetTempPath());
        Assert.That(compiler.ArchitectureOption, Is.EqualTo($"--gpu-architecture=compute_{newest}"));
    }
}
