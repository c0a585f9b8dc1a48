using NativeSparsity.Engine.Backends;
using NativeSparsity.Engine.Backends.Cuda;
using NativeSparsity.Engine.Backends.Cuda.Native;
using System.Text.RegularExpressions;
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

    [Test]
    public void EveryKernelParameterListIsRead()
    {
        foreach (string file in KernelSources.KernelFiles)
        {
            string source = KernelSources.Read(file);
            var signatures = KernelCompiler.Signatures(source);
            Assert.That(signatures.Keys, Is.EquivalentTo(KernelCompiler.EntryPoints(source)), file);
        }
        var add = KernelCompiler.Signatures(KernelSources.Read("elementwise.cu"))["axpy_f32"];
        Assert.That(add, Is.EqualTo(new[] { KernelCompiler.ParameterKind.Float32, KernelCompiler.ParameterKind.Pointer,
                                             KernelCompiler.ParameterKind.Pointer, KernelCompiler.ParameterKind.Int64 }));
    }

    /// <summary>
    /// Without a GPU no launch runs, so read CudaOps.cs: every Launch/Elementwise call must pass
    /// arguments of the kinds, in the order, that the kernel declares (the backend also checks this
    /// at the first launch of each kernel on a GPU).
    /// </summary>
    [Test]
    public void EveryLaunchInTheBackendMatchesItsKernelsParameters()
    {
        string? repo = null;
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null && repo == null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "NativeSparsity.sln"))) repo = dir.FullName;
        if (repo == null) Assert.Ignore("the source checkout (NativeSparsity.sln) is not above the test binaries");
        // Every file of the backend that launches kernels (the ops, and the radix select of the sparsity core).
        string ops = string.Concat(new[] { "CudaOps.cs", "CudaRadixSelect.cs" }
            .Select(f => File.ReadAllText(Path.Combine(repo!, "engine", "Backends", "Cuda", f))));
        int launches = 0;
        var launched = new HashSet<string>();
        foreach (Match call in Regex.Matches(ops, @"\b(Launch|Elementwise)\(""(\w+\.cu)"", ""(\w+)"""))
        {
            int depth = 0, end = call.Index + call.Groups[1].Length;
            for (; end < ops.Length; end++)
            {
                if (ops[end] == '(') depth++;
                else if (ops[end] == ')' && --depth == 0) break;
            }
            string text = ops[call.Index..end];
            text = Regex.Replace(text, @":\s*Arg\.Null", "");   // the else branch of "x != null ? Arg.Ptr(...) : Arg.Null"
            var given = Regex.Matches(text, @"Arg\.(Ptr|Null|I32|I64|U64|F32)\b").Select(m => m.Groups[1].Value switch
            {
                "Ptr" or "Null" => KernelCompiler.ParameterKind.Pointer,
                "I32" => KernelCompiler.ParameterKind.Int32,
                "F32" => KernelCompiler.ParameterKind.Float32,
                _ => KernelCompiler.ParameterKind.Int64,
            }).ToArray();
            var declared = KernelCompiler.Signatures(KernelSources.Read(call.Groups[2].Value))[call.Groups[3].Value];
            Assert.That(given, Is.EqualTo(declared), $"arguments of {call.Groups[3].Value} in the CUDA backend");
            launches++;
            launched.Add(call.Groups[3].Value);
        }
        var all = KernelSources.KernelFiles.SelectMany(f => KernelCompiler.EntryPoints(KernelSources.Read(f)));
        Assert.That(launched, Is.EquivalentTo(all), "every kernel should be launched by some op, and only kernels that exist");
        TestContext.Out.WriteLine($"{launches} launches checked");
    }
}
