using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using NativeSparsity.Engine.Backends.Cuda.Native;

namespace NativeSparsity.Engine.Backends.Cuda;

/// <summary>Thrown when a kernel file does not compile; the message carries NVRTC's log.</summary>
public sealed class KernelCompileException(string message) : Exception(message);

/// <summary>
/// Compiles the embedded kernel files with NVRTC for one device, on first use, and keeps the result
/// on disk keyed by SHA-256 of (source, headers, options, NVRTC version), so a second run loads the
/// CUBIN without compiling. Targets the device's own architecture (sm_XY, a CUBIN) when this NVRTC
/// knows it; otherwise PTX for the newest architecture it knows, which the driver compiles on load.
/// The cache folder is NSPARSE_KERNEL_CACHE, else $XDG_CACHE_HOME/nativesparsity/kernels, else
/// ~/.cache/nativesparsity/kernels.
/// </summary>
public sealed partial class KernelCompiler
{
    public const string CacheVariable = "NSPARSE_KERNEL_CACHE";

    private readonly Dictionary<string, byte[]> _images = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();

    public KernelCompiler(int computeMajor, int computeMinor, string? cacheDirectory = null)
    {
        int arch = computeMajor * 10 + computeMinor;
        NvrtcVersion = Nvrtc.Version();
        int[] supported = Nvrtc.SupportedArchs();
        if (supported.Contains(arch))
            ArchitectureOption = $"--gpu-architecture=sm_{arch}";
        else
        {
            int best = supported.Where(a => a <= arch).DefaultIfEmpty(0).Max();
            if (best == 0)
                throw new NotSupportedException(
                    $"NVRTC {NvrtcVersion.Major}.{NvrtcVersion.Minor} targets sm_{string.Join("/", supported)}, none of which runs on a compute capability {computeMajor}.{computeMinor} device");
            ArchitectureOption = $"--gpu-architecture=compute_{best}";
        }
        CacheDirectory = cacheDirectory ?? DefaultCacheDirectory();
    }

    public (int Major, int Minor) NvrtcVersion { get; }
    public string ArchitectureOption { get; }
    public string CacheDirectory { get; }
    /// <summary>Compilations done by this instance (cache misses), for tests and diagnostics.</summary>
    public int Compilations { get; private set; }

    /// <summary>The options every kernel is compiled with, after the architecture option.</summary>
    public static IReadOnlyList<string> CompileOptions(string architectureOption) =>
        [architectureOption, "--std=c++17", "--fmad=true", "-default-device"];

    public static string DefaultCacheDirectory()
    {
        if (Environment.GetEnvironmentVariable(CacheVariable) is { Length: > 0 } dir) return dir;
        string? xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
        string root = !string.IsNullOrEmpty(xdg)
            ? xdg
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
        return Path.Combine(root, "nativesparsity", "kernels");
    }

    [GeneratedRegex(@"extern\s+""C""\s+__global__\s+void\s+(\w+)\s*\(")]
    private static partial Regex EntryPointPattern();

    /// <summary>Names of the <c>extern "C" __global__</c> kernels a source file defines.</summary>
    public static IEnumerable<string> EntryPoints(string source) =>
        EntryPointPattern().Matches(source).Select(m => m.Groups[1].Value);

    /// <summary>How a kernel parameter is passed: a device pointer, a 32-bit int or float, or a 64-bit integer.</summary>
    public enum ParameterKind { Pointer, Int32, Float32, Int64 }

    [GeneratedRegex(@"extern\s+""C""\s+__global__\s+void\s+(\w+)\s*\(([^)]*)\)")]
    private static partial Regex SignaturePattern();

    /// <summary>
    /// The parameter kinds of every kernel in a source file, read from its text, so the host can check
    /// each launch's arguments against the kernel before a mismatch corrupts device memory.
    /// </summary>
    public static Dictionary<string, ParameterKind[]> Signatures(string source)
    {
        var result = new Dictionary<string, ParameterKind[]>(StringComparer.Ordinal);
        foreach (Match m in SignaturePattern().Matches(source))
        {
            string list = m.Groups[2].Value.Trim();
            result[m.Groups[1].Value] = list.Length == 0 ? [] : list.Split(',').Select(p => KindOf(p, m.Groups[1].Value)).ToArray();
        }
        return result;
    }

    private static ParameterKind KindOf(string parameter, string kernel)
    {
        string p = Regex.Replace(parameter.Trim(), @"\s+", " ");
        if (p.Contains('*')) return ParameterKind.Pointer;
        if (p.StartsWith("float ", StringComparison.Ordinal)) return ParameterKind.Float32;
        if (p.StartsWith("int ", StringComparison.Ordinal) || p.StartsWith("unsigned int ", StringComparison.Ordinal)) return ParameterKind.Int32;
        if (p.StartsWith("i64 ", StringComparison.Ordinal) || p.StartsWith("u64 ", StringComparison.Ordinal)
            || p.StartsWith("long long ", StringComparison.Ordinal) || p.StartsWith("unsigned long long ", StringComparison.Ordinal))
            return ParameterKind.Int64;
        throw new NotSupportedException($"kernel {kernel}: parameter '{p}' has a type the launcher does not pass");
    }

    /// <summary>The compiled image (CUBIN or NUL-terminated PTX) of one kernel file, e.g. "gelu.cu".</summary>
    public byte[] Image(string kernelFile)
    {
        lock (_gate)
        {
            if (_images.TryGetValue(kernelFile, out byte[]? cached)) return cached;
            byte[] image = LoadOrCompile(kernelFile);
            _images[kernelFile] = image;
            return image;
        }
    }

    private byte[] LoadOrCompile(string kernelFile)
    {
        string source = KernelSources.Read(kernelFile);
        var headers = KernelSources.Headers;
        var options = CompileOptions(ArchitectureOption);
        string key = CacheKey(source, headers, options);
        bool cubin = ArchitectureOption.Contains("sm_", StringComparison.Ordinal);
        string path = Path.Combine(CacheDirectory, $"{Path.GetFileNameWithoutExtension(kernelFile)}-{key[..24]}.{(cubin ? "cubin" : "ptx")}");
        try
        {
            if (File.Exists(path)) return File.ReadAllBytes(path);
        }
        catch (IOException) { /* unreadable cache entry: compile again */ }

        var result = Nvrtc.Compile(source, kernelFile, headers, options);
        Compilations++;
        if (!result.Succeeded)
            throw new KernelCompileException(
                $"kernels/{kernelFile} failed to compile with NVRTC {NvrtcVersion.Major}.{NvrtcVersion.Minor} ({string.Join(' ', options)}):\n{result.Log}");
        TryWriteCache(path, result.Image);
        return result.Image;
    }

    private string CacheKey(string source, IReadOnlyDictionary<string, string> headers, IReadOnlyList<string> options)
    {
        var text = new StringBuilder();
        text.Append("nvrtc ").Append(NvrtcVersion.Major).Append('.').Append(NvrtcVersion.Minor).Append('\n');
        foreach (string option in options) text.Append(option).Append('\n');
        foreach (var (name, body) in headers.OrderBy(h => h.Key, StringComparer.Ordinal))
            text.Append("== ").Append(name).Append('\n').Append(body);
        text.Append("== source\n").Append(source);
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text.ToString())));
    }

    /// <summary>Writes through a temporary file and a rename, so a reader never sees half an entry.</summary>
    private static void TryWriteCache(string path, byte[] image)
    {
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            string temp = $"{path}.{Environment.ProcessId}.tmp";
            File.WriteAllBytes(temp, image);
            File.Move(temp, path, overwrite: true);
        }
        catch (IOException) { /* a read-only or full cache only costs a recompile next time */ }
        catch (UnauthorizedAccessException) { }
    }
}
