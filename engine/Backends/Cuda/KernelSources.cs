using System.Reflection;

namespace NativeSparsity.Engine.Backends.Cuda;

/// <summary>
/// The CUDA C sources embedded in the engine assembly (kernels/*.cu, one per op family) and the
/// headers they include (kernels/*.cuh), which NVRTC receives as in-memory headers.
/// </summary>
public static class KernelSources
{
    private const string Prefix = "kernels/";
    private static readonly Assembly Engine = typeof(KernelSources).Assembly;
    private static readonly Lazy<Dictionary<string, string>> All = new(Load);

    /// <summary>File names of the kernel files, e.g. "gelu.cu", sorted.</summary>
    public static IReadOnlyList<string> KernelFiles =>
        All.Value.Keys.Where(k => k.EndsWith(".cu", StringComparison.Ordinal)).Order(StringComparer.Ordinal).ToList();

    /// <summary>Header name to text, for every kernels/*.cuh.</summary>
    public static IReadOnlyDictionary<string, string> Headers =>
        All.Value.Where(kv => kv.Key.EndsWith(".cuh", StringComparison.Ordinal)).ToDictionary(kv => kv.Key, kv => kv.Value);

    /// <summary>The text of one kernel or header file.</summary>
    public static string Read(string fileName) =>
        All.Value.TryGetValue(fileName, out string? text)
            ? text
            : throw new ArgumentException($"no embedded kernel file '{fileName}'; known: {string.Join(", ", All.Value.Keys.Order())}", nameof(fileName));

    private static Dictionary<string, string> Load()
    {
        var files = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (string resource in Engine.GetManifestResourceNames())
        {
            if (!resource.StartsWith(Prefix, StringComparison.Ordinal)) continue;
            using var stream = Engine.GetManifestResourceStream(resource)!;
            using var reader = new StreamReader(stream);
            files[resource[Prefix.Length..]] = reader.ReadToEnd();
        }
        return files;
    }
}
