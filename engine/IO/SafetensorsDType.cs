using NativeSparsity.Engine.Tensors;

namespace NativeSparsity.Engine.IO;

/// <summary>Element types of the safetensors format. The engine computes on F32 only, but a file
/// may hold any of these; sizes are needed to validate a header even for types we never convert.</summary>
public enum SafetensorsDType
{
    BOOL, U8, I8, F8_E5M2, F8_E4M3, I16, U16, F16, BF16, I32, U32, F32, F64, I64, U64,
}

public static class SafetensorsDTypes
{
    public static int SizeInBytes(this SafetensorsDType dtype) => dtype switch
    {
        SafetensorsDType.BOOL or SafetensorsDType.U8 or SafetensorsDType.I8
            or SafetensorsDType.F8_E5M2 or SafetensorsDType.F8_E4M3 => 1,
        SafetensorsDType.I16 or SafetensorsDType.U16 or SafetensorsDType.F16 or SafetensorsDType.BF16 => 2,
        SafetensorsDType.I32 or SafetensorsDType.U32 or SafetensorsDType.F32 => 4,
        SafetensorsDType.F64 or SafetensorsDType.I64 or SafetensorsDType.U64 => 8,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "unknown safetensors dtype"),
    };

    /// <summary>Parses the header spelling ("F32", "BF16", ...); false for anything else.</summary>
    public static bool TryParse(string text, out SafetensorsDType dtype)
    {
        foreach (var d in Enum.GetValues<SafetensorsDType>())
        {
            if (d.ToString() == text) { dtype = d; return true; }
        }
        dtype = default;
        return false;
    }

    public static string KnownNames => string.Join(", ", Enum.GetNames<SafetensorsDType>());

    public static SafetensorsDType FromEngine(DType dtype) => dtype switch
    {
        DType.F32 => SafetensorsDType.F32,
        DType.BF16 => SafetensorsDType.BF16,
        DType.I32 => SafetensorsDType.I32,
        DType.U8 => SafetensorsDType.U8,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "no safetensors equivalent"),
    };

    /// <summary>The engine dtype a tensor of this type loads as: floats become F32, I32 and U8 stay.</summary>
    public static DType? ToEngine(this SafetensorsDType dtype) => dtype switch
    {
        SafetensorsDType.F32 or SafetensorsDType.BF16 or SafetensorsDType.F16 or SafetensorsDType.F64 => DType.F32,
        SafetensorsDType.I32 => DType.I32,
        SafetensorsDType.U8 or SafetensorsDType.BOOL => DType.U8,
        _ => null,
    };
}
