using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;

namespace NativeSparsity.Engine.Backends.Cuda.Native;

public enum NvrtcResult { Success = 0 }

/// <summary>Thin typed bindings of NVRTC, the CUDA runtime compiler, plus a one-call compile helper.</summary>
public static unsafe partial class Nvrtc
{
    private const string Lib = CudaLibraries.NvrtcName;

    static Nvrtc() => CudaLibraries.InstallResolver();

    public static void Check(NvrtcResult result, [CallerArgumentExpression(nameof(result))] string call = "")
    {
        if (result == NvrtcResult.Success) return;
        string text = Marshal.PtrToStringUTF8(nvrtcGetErrorString(result)) ?? "unknown error";
        int paren = call.IndexOf('(');
        throw new CudaException(paren > 0 ? call[..paren] : call, (int)result, text, text);
    }

    [LibraryImport(Lib)] public static partial nint nvrtcGetErrorString(NvrtcResult result);
    [LibraryImport(Lib)] public static partial NvrtcResult nvrtcVersion(out int major, out int minor);
    [LibraryImport(Lib)] public static partial NvrtcResult nvrtcGetNumSupportedArchs(out int count);
    [LibraryImport(Lib)] public static partial NvrtcResult nvrtcGetSupportedArchs(int* archs);
    [LibraryImport(Lib)]
    public static partial NvrtcResult nvrtcCreateProgram(out nint program, byte* source, byte* name,
        int numHeaders, byte** headers, byte** includeNames);
    [LibraryImport(Lib)] public static partial NvrtcResult nvrtcDestroyProgram(ref nint program);
    [LibraryImport(Lib)] public static partial NvrtcResult nvrtcCompileProgram(nint program, int numOptions, byte** options);
    [LibraryImport(Lib)] public static partial NvrtcResult nvrtcGetProgramLogSize(nint program, out nuint size);
    [LibraryImport(Lib)] public static partial NvrtcResult nvrtcGetProgramLog(nint program, byte* log);
    [LibraryImport(Lib)] public static partial NvrtcResult nvrtcGetPTXSize(nint program, out nuint size);
    [LibraryImport(Lib)] public static partial NvrtcResult nvrtcGetPTX(nint program, byte* ptx);
    [LibraryImport(Lib)] public static partial NvrtcResult nvrtcGetCUBINSize(nint program, out nuint size);
    [LibraryImport(Lib)] public static partial NvrtcResult nvrtcGetCUBIN(nint program, byte* cubin);

    /// <summary>NVRTC's version as (major, minor).</summary>
    public static (int Major, int Minor) Version()
    {
        Check(nvrtcVersion(out int major, out int minor));
        return (major, minor);
    }

    /// <summary>The SM numbers (e.g. 80, 90) this NVRTC can target.</summary>
    public static int[] SupportedArchs()
    {
        Check(nvrtcGetNumSupportedArchs(out int n));
        var archs = new int[n];
        fixed (int* p = archs) Check(nvrtcGetSupportedArchs(p));
        return archs;
    }

    /// <summary>The outcome of one compilation: success, the log, and the PTX or CUBIN image.</summary>
    public sealed record Compilation(bool Succeeded, string Log, byte[] Image, bool IsCubin);

    /// <summary>
    /// Compiles <paramref name="source"/> with in-memory headers (name to text). Emits CUBIN when the
    /// options target a real architecture (sm_XY), PTX otherwise. A compile error is returned, not
    /// thrown, so the caller can show the log; an NVRTC failure of another kind throws.
    /// </summary>
    public static Compilation Compile(string source, string fileName, IReadOnlyDictionary<string, string> headers, IReadOnlyList<string> options)
    {
        var pinned = new List<nint>();
        byte* Utf8(string s)
        {
            nint p = Marshal.StringToCoTaskMemUTF8(s);
            pinned.Add(p);
            return (byte*)p;
        }
        nint program = 0;
        try
        {
            var headerNames = headers.Keys.ToArray();
            byte** hdrText = stackalloc byte*[Math.Max(headerNames.Length, 1)];
            byte** hdrName = stackalloc byte*[Math.Max(headerNames.Length, 1)];
            for (int i = 0; i < headerNames.Length; i++)
            {
                hdrText[i] = Utf8(headers[headerNames[i]]);
                hdrName[i] = Utf8(headerNames[i]);
            }
            Check(nvrtcCreateProgram(out program, Utf8(source), Utf8(fileName), headerNames.Length, hdrText, hdrName));

            byte** opts = stackalloc byte*[Math.Max(options.Count, 1)];
            for (int i = 0; i < options.Count; i++) opts[i] = Utf8(options[i]);
            NvrtcResult compiled = nvrtcCompileProgram(program, options.Count, opts);

            Check(nvrtcGetProgramLogSize(program, out nuint logSize));
            var logBytes = new byte[(int)logSize];
            fixed (byte* p = logBytes) Check(nvrtcGetProgramLog(program, p));
            string log = Encoding.UTF8.GetString(logBytes).TrimEnd('\0', '\n', ' ');

            const NvrtcResult CompilationError = (NvrtcResult)6;
            if (compiled == CompilationError) return new Compilation(false, log, [], false);
            Check(compiled, "nvrtcCompileProgram");

            bool cubin = options.Any(o => o.Contains("sm_", StringComparison.Ordinal));
            byte[] image;
            if (cubin)
            {
                Check(nvrtcGetCUBINSize(program, out nuint size));
                image = new byte[(int)size];
                fixed (byte* p = image) Check(nvrtcGetCUBIN(program, p));
            }
            else
            {
                Check(nvrtcGetPTXSize(program, out nuint size));
                image = new byte[(int)size];
                fixed (byte* p = image) Check(nvrtcGetPTX(program, p));
            }
            return new Compilation(true, log, image, cubin);
        }
        finally
        {
            if (program != 0) nvrtcDestroyProgram(ref program);
            foreach (nint p in pinned) Marshal.FreeCoTaskMem(p);
        }
    }
}
