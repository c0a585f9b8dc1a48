using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace NativeSparsity.Engine.Backends.Cuda.Native;

public enum CublasStatus { Success = 0 }
public enum CublasOperation { N = 0, T = 1 }
/// <summary>cublasComputeType_t values used here.</summary>
public enum CublasComputeType { F32 = 68, F32FastTf32 = 77 }
/// <summary>cublasMath_t values used here.</summary>
public enum CublasMath { Default = 0, Pedantic = 2, Tf32TensorOp = 3 }
/// <summary>cudaDataType values used here.</summary>
public enum CudaDataType { R32F = 0 }
public readonly record struct CublasHandle(nint Handle);

/// <summary>
/// Thin bindings of cuBLAS (column-major). A row-major C = op(A) op(B) is computed as the
/// column-major C^T = op(B)^T op(A)^T: swap the operands and m with n, keep the transpose flags.
/// </summary>
public static unsafe partial class Cublas
{
    private const string Lib = CudaLibraries.CublasName;
    public const int GemmDefaultAlgorithm = -1;

    static Cublas() => CudaLibraries.InstallResolver();

    public static void Check(CublasStatus status, [CallerArgumentExpression(nameof(status))] string call = "")
    {
        if (status == CublasStatus.Success) return;
        int paren = call.IndexOf('(');
        throw new CudaException(paren > 0 ? call[..paren] : call, (int)status, StatusName((int)status), StatusText((int)status));
    }

    private static string StatusName(int status) => status switch
    {
        1 => "CUBLAS_STATUS_NOT_INITIALIZED",
        3 => "CUBLAS_STATUS_ALLOC_FAILED",
        7 => "CUBLAS_STATUS_INVALID_VALUE",
        8 => "CUBLAS_STATUS_ARCH_MISMATCH",
        11 => "CUBLAS_STATUS_MAPPING_ERROR",
        13 => "CUBLAS_STATUS_EXECUTION_FAILED",
        14 => "CUBLAS_STATUS_INTERNAL_ERROR",
        15 => "CUBLAS_STATUS_NOT_SUPPORTED",
        16 => "CUBLAS_STATUS_LICENSE_ERROR",
        _ => "CUBLAS_STATUS_" + status,
    };

    private static string StatusText(int status) => status switch
    {
        1 => "cuBLAS was not initialised",
        3 => "cuBLAS could not allocate device memory",
        7 => "an argument was out of range (check m, n, k and the leading dimensions)",
        8 => "the device lacks a feature this call needs",
        13 => "the kernel failed to run on the GPU",
        15 => "this combination of types or options is not supported",
        _ => "see the cuBLAS documentation for this status",
    };

    [LibraryImport(Lib, EntryPoint = "cublasCreate_v2")] public static partial CublasStatus cublasCreate(out CublasHandle handle);
    [LibraryImport(Lib, EntryPoint = "cublasDestroy_v2")] public static partial CublasStatus cublasDestroy(CublasHandle handle);
    [LibraryImport(Lib, EntryPoint = "cublasSetStream_v2")] public static partial CublasStatus cublasSetStream(CublasHandle handle, CuStream stream);
    [LibraryImport(Lib)] public static partial CublasStatus cublasSetMathMode(CublasHandle handle, CublasMath mode);
    [LibraryImport(Lib, EntryPoint = "cublasGetVersion_v2")] public static partial CublasStatus cublasGetVersion(CublasHandle handle, out int version);

    [LibraryImport(Lib)]
    public static partial CublasStatus cublasGemmEx(CublasHandle handle, CublasOperation transa, CublasOperation transb,
        int m, int n, int k, float* alpha,
        CuDevicePtr a, CudaDataType aType, int lda,
        CuDevicePtr b, CudaDataType bType, int ldb, float* beta,
        CuDevicePtr c, CudaDataType cType, int ldc,
        CublasComputeType computeType, int algorithm);

    [LibraryImport(Lib)]
    public static partial CublasStatus cublasGemmStridedBatchedEx(CublasHandle handle, CublasOperation transa, CublasOperation transb,
        int m, int n, int k, float* alpha,
        CuDevicePtr a, CudaDataType aType, int lda, long strideA,
        CuDevicePtr b, CudaDataType bType, int ldb, long strideB, float* beta,
        CuDevicePtr c, CudaDataType cType, int ldc, long strideC,
        int batchCount, CublasComputeType computeType, int algorithm);
}
