using System.Reflection;
using System.Runtime.InteropServices;

namespace NativeSparsity.Engine.Backends.Cuda.Native;

/// <summary>The three NVIDIA libraries the CUDA backend binds.</summary>
public enum CudaLibrary { Driver, Nvrtc, Cublas }

/// <summary>Thrown when a CUDA library cannot be loaded; the message lists every place that was tried.</summary>
public sealed class CudaLibraryNotFoundException(string message) : Exception(message);

/// <summary>
/// Finds libcuda, libnvrtc and libcublas at run time, whatever CUDA version a machine has. Order:
/// <list type="number">
/// <item>the folder named by <c>NSPARSE_CUDA_LIB_DIR</c> (several folders may be separated by ':');</item>
/// <item>the versioned sonames 13, 12, 11.x through the system loader (Debian ships only
///   <c>libnvrtc.so.11.2</c>, never an unversioned name);</item>
/// <item>the pip <c>nvidia-*</c> package folders (<c>site-packages/nvidia/*/lib</c>) of the Python
///   on PATH, of an active virtualenv/conda environment and of the usual system prefixes;</item>
/// <item><c>/usr/local/cuda/lib64</c>;</item>
/// <item>NVRTC only: <c>.tools/nvrtc</c> of the source checkout that holds the running program, where
///   scripts/fetch-nvrtc.sh puts Debian's NVRTC for CI.</item>
/// </list>
/// The <c>[LibraryImport]</c> bindings name logical libraries (<see cref="DriverName"/> ...), which a
/// DllImport resolver maps to the handle found here.
/// </summary>
public static class CudaLibraries
{
    public const string DriverName = "nsparse-cuda-driver";
    public const string NvrtcName = "nsparse-nvrtc";
    public const string CublasName = "nsparse-cublas";
    public const string LibDirVariable = "NSPARSE_CUDA_LIB_DIR";

    private static readonly Lock Gate = new();
    private static readonly Dictionary<CudaLibrary, nint> Loaded = new();
    private static readonly Dictionary<CudaLibrary, string> Failures = new();
    private static readonly Dictionary<CudaLibrary, string> LoadedPaths = new();
    private static int _resolverInstalled;

    /// <summary>Installs the DllImport resolver for the engine assembly (once; later calls do nothing).</summary>
    internal static void InstallResolver()
    {
        if (Interlocked.Exchange(ref _resolverInstalled, 1) != 0) return;
        NativeLibrary.SetDllImportResolver(typeof(CudaLibraries).Assembly, Resolve);
    }

    private static nint Resolve(string name, Assembly assembly, DllImportSearchPath? searchPath)
    {
        CudaLibrary? lib = name switch
        {
            DriverName => CudaLibrary.Driver,
            NvrtcName => CudaLibrary.Nvrtc,
            CublasName => CudaLibrary.Cublas,
            _ => null,
        };
        return lib is { } l && TryLoad(l, out nint handle, out _) ? handle : 0;
    }

    /// <summary>Loads the library or throws <see cref="CudaLibraryNotFoundException"/> naming where it looked.</summary>
    public static nint Load(CudaLibrary library)
    {
        if (TryLoad(library, out nint handle, out string? error)) return handle;
        throw new CudaLibraryNotFoundException(error!);
    }

    /// <summary>The file a loaded library came from (or the soname the system loader resolved).</summary>
    public static string? PathOf(CudaLibrary library)
    {
        lock (Gate) return LoadedPaths.GetValueOrDefault(library);
    }

    public static bool TryLoad(CudaLibrary library, out nint handle, out string? error)
    {
        InstallResolver();
        lock (Gate)
        {
            if (Loaded.TryGetValue(library, out handle)) { error = null; return true; }
            if (Failures.TryGetValue(library, out error)) return false;

            var tried = new List<string>();
            foreach (string candidate in Candidates(library))
            {
                tried.Add(candidate);
                bool isPath = candidate.Contains('/');
                if (isPath && !File.Exists(candidate)) continue;
                if (isPath) PreloadCompanions(library, candidate);
                if (NativeLibrary.TryLoad(candidate, out handle))
                {
                    Loaded[library] = handle;
                    LoadedPaths[library] = candidate;
                    error = null;
                    return true;
                }
            }
            error = $"{FileStem(library)} not found; looked for {string.Join(", ", Sonames(library))} in: "
                    + string.Join("; ", DescribeSearch(library))
                    + $". Set {LibDirVariable} to the folder that holds it"
                    + (library == CudaLibrary.Nvrtc ? ", or run scripts/fetch-nvrtc.sh in the source checkout." : ".");
            Failures[library] = error;
            handle = 0;
            return false;
        }
    }

    private static string FileStem(CudaLibrary library) => library switch
    {
        CudaLibrary.Driver => "libcuda (the NVIDIA driver)",
        CudaLibrary.Nvrtc => "libnvrtc (CUDA runtime compiler)",
        _ => "libcublas",
    };

    /// <summary>Sonames newest first. NVRTC keeps soname 11.2 for every 11.x release.</summary>
    internal static string[] Sonames(CudaLibrary library) => library switch
    {
        CudaLibrary.Driver => ["libcuda.so.1", "libcuda.so"],
        CudaLibrary.Nvrtc => ["libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so.11.2", "libnvrtc.so.11.1", "libnvrtc.so.11.0", "libnvrtc.so"],
        _ => ["libcublas.so.13", "libcublas.so.12", "libcublas.so.11", "libcublas.so"],
    };

    private static IEnumerable<string> DescribeSearch(CudaLibrary library)
    {
        string? env = Environment.GetEnvironmentVariable(LibDirVariable);
        yield return env is { Length: > 0 } ? $"{LibDirVariable}={env}" : $"{LibDirVariable} (not set)";
        yield return "the system library path";
        if (library == CudaLibrary.Driver) yield break;
        var pip = PipNvidiaLibFolders().ToList();
        yield return pip.Count > 0 ? "pip nvidia-* folders " + string.Join(", ", pip) : "pip nvidia-* folders (none found)";
        yield return "/usr/local/cuda/lib64";
        if (library == CudaLibrary.Nvrtc) yield return RepoNvrtcFolder() ?? ".tools/nvrtc of a source checkout (none found)";
    }

    /// <summary>Every file or soname tried, in order.</summary>
    public static IEnumerable<string> Candidates(CudaLibrary library)
    {
        string[] sonames = Sonames(library);
        string? env = Environment.GetEnvironmentVariable(LibDirVariable);
        if (!string.IsNullOrEmpty(env))
            foreach (string dir in env.Split(':', StringSplitOptions.RemoveEmptyEntries))
                foreach (string so in sonames) yield return Path.Combine(dir, so);
        foreach (string so in sonames) yield return so;
        if (library == CudaLibrary.Driver)
            foreach (string so in sonames) yield return Path.Combine("/usr/lib/wsl/lib", so);   // WSL2 keeps the driver here
        else
        {
            foreach (string dir in PipNvidiaLibFolders())
                foreach (string so in sonames) yield return Path.Combine(dir, so);
            foreach (string dir in new[] { "/usr/local/cuda/lib64", "/usr/local/cuda/targets/x86_64-linux/lib" })
                foreach (string so in sonames) yield return Path.Combine(dir, so);
        }
        if (library == CudaLibrary.Nvrtc && RepoNvrtcFolder() is { } repo)
            foreach (string so in sonames) yield return Path.Combine(repo, so);
    }

    /// <summary>
    /// NVRTC dlopens libnvrtc-builtins by soname, and libcublas needs libcublasLt; a folder outside the
    /// loader's path (pip, /usr/local/cuda without ld.so.conf) may not be searched for them. Loading the
    /// companion of the same major version from the same folder first makes those lookups succeed.
    /// </summary>
    private static void PreloadCompanions(CudaLibrary library, string path)
    {
        string? companion = library switch { CudaLibrary.Nvrtc => "libnvrtc-builtins", CudaLibrary.Cublas => "libcublasLt", _ => null };
        string? dir = Path.GetDirectoryName(path);
        if (companion == null || dir == null || !Directory.Exists(dir)) return;
        string file = Path.GetFileName(path);
        int so = file.IndexOf(".so.", StringComparison.Ordinal);
        string major = so < 0 ? "" : file[(so + 4)..].Split('.')[0];
        foreach (string candidate in Directory.EnumerateFiles(dir, $"{companion}.so.{major}*").Order(StringComparer.Ordinal))
            if (NativeLibrary.TryLoad(candidate, out _)) return;
    }

    /// <summary>site-packages/nvidia/*/lib of every Python environment we can find without running Python.</summary>
    internal static IEnumerable<string> PipNvidiaLibFolders()
    {
        var prefixes = new List<string>();
        foreach (string var in new[] { "VIRTUAL_ENV", "CONDA_PREFIX" })
            if (Environment.GetEnvironmentVariable(var) is { Length: > 0 } p) prefixes.Add(p);
        foreach (string dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            string python = Path.Combine(dir, "python3");
            if (!File.Exists(python)) continue;
            string real = python;
            try { real = new FileInfo(python).ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? python; } catch (IOException) { }
            prefixes.Add(Path.GetDirectoryName(Path.GetDirectoryName(python))!);
            prefixes.Add(Path.GetDirectoryName(Path.GetDirectoryName(real))!);
        }
        string home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        prefixes.AddRange(["/usr", "/usr/local", "/opt/conda", Path.Combine(home, ".local")]);

        var seen = new HashSet<string>();
        foreach (string prefix in prefixes.Distinct())
        {
            string lib = Path.Combine(prefix, "lib");
            if (!Directory.Exists(lib)) continue;
            IEnumerable<string> pythons;
            try { pythons = Directory.EnumerateDirectories(lib, "python3*").ToList(); } catch (IOException) { continue; } catch (UnauthorizedAccessException) { continue; }
            foreach (string py in pythons)
                foreach (string packages in new[] { "site-packages", "dist-packages" })
                {
                    string nvidia = Path.Combine(py, packages, "nvidia");
                    if (!Directory.Exists(nvidia)) continue;
                    foreach (string pkg in Directory.EnumerateDirectories(nvidia).Order())
                        foreach (string sub in new[] { "lib", "lib64" })
                        {
                            string dir = Path.Combine(pkg, sub);
                            if (Directory.Exists(dir) && seen.Add(dir)) yield return dir;
                        }
                }
        }
    }

    /// <summary>.tools/nvrtc/usr/lib/x86_64-linux-gnu of the checkout above the running program, if any.</summary>
    internal static string? RepoNvrtcFolder()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
        {
            if (!File.Exists(Path.Combine(dir.FullName, "NativeSparsity.sln"))) continue;
            string folder = Path.Combine(dir.FullName, ".tools", "nvrtc", "usr", "lib", "x86_64-linux-gnu");
            return Directory.Exists(folder) ? folder : null;
        }
        return null;
    }
}
