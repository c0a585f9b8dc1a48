using System.Runtime.InteropServices;

namespace NativeSparsity.Experiments.Bench;

/// <summary>cblas_sgemm and thread control from libopenblas.so.0, found at run time.</summary>
internal sealed unsafe class OpenBlas
{
    private const int RowMajor = 101, NoTrans = 111, Trans = 112;
    private readonly delegate* unmanaged[Cdecl]<int, int, int, int, int, int, float, float*, int, float*, int, float, float*, int, void> _sgemm;
    private readonly delegate* unmanaged[Cdecl]<int, void> _setThreads;

    private OpenBlas(nint lib)
    {
        _sgemm = (delegate* unmanaged[Cdecl]<int, int, int, int, int, int, float, float*, int, float*, int, float, float*, int, void>)
            NativeLibrary.GetExport(lib, "cblas_sgemm");
        _setThreads = (delegate* unmanaged[Cdecl]<int, void>)NativeLibrary.GetExport(lib, "openblas_set_num_threads");
        Config = ReadString(lib, "openblas_get_config");
        CoreName = ReadString(lib, "openblas_get_corename");
    }

    public string Config { get; }
    public string CoreName { get; }

    public static OpenBlas? TryLoad() => NativeLibrary.TryLoad("libopenblas.so.0", out nint lib) ? new OpenBlas(lib) : null;

    public void SetThreads(int threads) => _setThreads(threads);

    public void Sgemm(bool transA, bool transB, int m, int n, int k, float alpha, float* a, int lda, float* b, int ldb,
                      float beta, float* c, int ldc) =>
        _sgemm(RowMajor, transA ? Trans : NoTrans, transB ? Trans : NoTrans, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);

    private static string ReadString(nint lib, string export)
    {
        if (!NativeLibrary.TryGetExport(lib, export, out nint f)) return "?";
        var p = ((delegate* unmanaged[Cdecl]<nint>)f)();
        return Marshal.PtrToStringAnsi(p) ?? "?";
    }
}
