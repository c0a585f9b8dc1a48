namespace NativeSparsity.Engine.Backends.Cuda.Native;

/// <summary>A failed CUDA driver, NVRTC or cuBLAS call: names the call, the error code and its text.</summary>
public sealed class CudaException(string call, int code, string errorName, string errorText)
    : Exception($"{call} failed: {errorName} ({code}): {errorText}")
{
    public string Call { get; } = call;
    public int Code { get; } = code;
    public string ErrorName { get; } = errorName;
}
