using Google.Protobuf;

namespace NativeSparsity.Models.Onnx;

/// <summary>ONNX TensorProto.DataType values this code names (the rest are kept as numbers).</summary>
public enum OnnxDataType
{
    Undefined = 0, Float = 1, UInt8 = 2, Int8 = 3, UInt16 = 4, Int16 = 5, Int32 = 6, Int64 = 7, String = 8, Bool = 9,
    Float16 = 10, Double = 11, UInt32 = 12, UInt64 = 13, Complex64 = 14, Complex128 = 15, BFloat16 = 16,
}

/// <summary>One TensorProto: an initializer or a Constant's value.</summary>
public sealed class OnnxTensor
{
    public string Name { get; internal set; } = "";
    public int DataType { get; internal set; }
    public long[] Dims { get; internal set; } = Array.Empty<long>();
    /// <summary>True when the data lives in another file (data_location EXTERNAL); nothing is read then.</summary>
    public bool External { get; internal set; }
    internal byte[]? Raw;
    internal List<float>? FloatData;
    internal List<long>? Int64Data;
    internal List<int>? Int32Data;
    internal List<double>? DoubleData;

    public long ElementCount => Dims.Aggregate(1L, (a, d) => a * d);

    public string TypeName => Enum.IsDefined(typeof(OnnxDataType), DataType) ? ((OnnxDataType)DataType).ToString().ToLowerInvariant() : $"data type {DataType}";

    /// <summary>The values as float32 (float32 or float64 tensors; anything else is refused, naming the tensor).</summary>
    public float[] ToFloats() => DataType switch
    {
        (int)OnnxDataType.Float => Values(FloatData, sizeof(float)),
        (int)OnnxDataType.Double => Values(DoubleData, sizeof(double)).Select(x => (float)x).ToArray(),
        _ => throw new InvalidDataException($"tensor '{Name}' is {TypeName}, expected float32"),
    };

    /// <summary>The values as int64 (int64 or int32 tensors), for shapes and axes.</summary>
    public long[] ToInt64s() => DataType switch
    {
        (int)OnnxDataType.Int64 => Values(Int64Data, sizeof(long)),
        (int)OnnxDataType.Int32 => Values(Int32Data, sizeof(int)).Select(x => (long)x).ToArray(),
        _ => throw new InvalidDataException($"tensor '{Name}' is {TypeName}, expected int64"),
    };

    // The data is either raw little-endian bytes or the typed repeated field.
    private T[] Values<T>(List<T>? typed, int size) where T : unmanaged
    {
        if (External) throw new InvalidDataException($"tensor '{Name}' keeps its data in an external file; only self-contained ONNX files are read");
        long n = ElementCount;
        T[] values;
        if (Raw != null)
        {
            CheckRawLength(n, size);
            values = new T[n];
            Buffer.BlockCopy(Raw, 0, values, 0, Raw.Length);
        }
        else values = (typed ?? new List<T>()).ToArray();
        if (values.Length != n) throw new InvalidDataException($"tensor '{Name}' holds {values.Length} values, its dims [{string.Join(", ", Dims)}] say {n}");
        return values;
    }

    private void CheckRawLength(long n, int size)
    {
        if (Raw!.LongLength != n * size)
            throw new InvalidDataException($"tensor '{Name}' has {Raw.LongLength} bytes of raw data, its dims [{string.Join(", ", Dims)}] need {n * size}");
    }
}

/// <summary>One AttributeProto (the kinds a BERT export uses: float, int, string, tensor, ints, floats).</summary>
public sealed class OnnxAttribute
{
    public string Name { get; internal set; } = "";
    public float F { get; internal set; }
    public long I { get; internal set; }
    public byte[] S { get; internal set; } = Array.Empty<byte>();
    public OnnxTensor? T { get; internal set; }
    public List<long> Ints { get; } = new();
    public List<float> Floats { get; } = new();
}

/// <summary>One NodeProto.</summary>
public sealed class OnnxNode
{
    public string Name { get; internal set; } = "";
    public string OpType { get; internal set; } = "";
    public string Domain { get; internal set; } = "";
    public List<string> Inputs { get; } = new();
    public List<string> Outputs { get; } = new();
    public Dictionary<string, OnnxAttribute> Attributes { get; } = new(StringComparer.Ordinal);

    /// <summary>The node's name, or a description by op and first output where it has none.</summary>
    public string Label => Name.Length > 0 ? Name : $"{OpType} -> {Outputs.FirstOrDefault()}";

    public long IntAttribute(string name, long fallback) => Attributes.TryGetValue(name, out var a) ? a.I : fallback;
}

/// <summary>One GraphProto: nodes in topological order, initializers, and the names of inputs and outputs.</summary>
public sealed class OnnxGraph
{
    public string Name { get; internal set; } = "";
    public List<OnnxNode> Nodes { get; } = new();
    public List<OnnxTensor> Initializers { get; } = new();
    public List<string> Inputs { get; } = new();
    public List<string> Outputs { get; } = new();
    /// <summary>Count of sparse_initializer entries (not read; their presence is refused by the importer).</summary>
    public int SparseInitializers { get; internal set; }
}

/// <summary>
/// An ONNX model file (ModelProto) read with Google.Protobuf's wire-format reader: only the fields
/// a graph import needs (field numbers from onnx.proto); unknown fields are skipped, a truncated or
/// malformed file is an error naming it.
/// </summary>
public sealed class OnnxModel
{
    public long IrVersion { get; private set; }
    public string ProducerName { get; private set; } = "";
    public string ProducerVersion { get; private set; } = "";
    /// <summary>Operator set versions by domain ("" is the default ONNX domain).</summary>
    public Dictionary<string, long> Opsets { get; } = new(StringComparer.Ordinal);
    public OnnxGraph Graph { get; private set; } = new();

    public static OnnxModel Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: no such ONNX file", path);
        return Parse(File.ReadAllBytes(path), path);
    }

    /// <summary>Parses a serialized ModelProto; <paramref name="source"/> names it in errors.</summary>
    public static OnnxModel Parse(byte[] bytes, string source)
    {
        var model = new OnnxModel();
        bool haveGraph = false;
        try
        {
            var input = new CodedInputStream(bytes);
            uint tag;
            while ((tag = input.ReadTag()) != 0)
            {
                switch (WireFormat.GetTagFieldNumber(tag))
                {
                    case 1: model.IrVersion = input.ReadInt64(); break;
                    case 2: model.ProducerName = input.ReadString(); break;
                    case 3: model.ProducerVersion = input.ReadString(); break;
                    case 7: model.Graph = ReadGraph(Nested(input)); haveGraph = true; break;
                    case 8:
                        {
                            var (domain, version) = ReadOpset(Nested(input));
                            model.Opsets[domain] = version;
                            break;
                        }
                    default: input.SkipLastField(); break;
                }
            }
        }
        catch (InvalidProtocolBufferException e)
        {
            throw new InvalidDataException($"{source}: not a readable ONNX model: the protobuf data is truncated or corrupt", e);
        }
        if (!haveGraph) throw new InvalidDataException($"{source}: not an ONNX model (no graph; truncated or another kind of file)");
        return model;
    }

    private static CodedInputStream Nested(CodedInputStream input) => input.ReadBytes().CreateCodedInput();

    private static (string Domain, long Version) ReadOpset(CodedInputStream input)
    {
        string domain = ""; long version = 0;
        uint tag;
        while ((tag = input.ReadTag()) != 0)
        {
            switch (WireFormat.GetTagFieldNumber(tag))
            {
                case 1: domain = input.ReadString(); break;
                case 2: version = input.ReadInt64(); break;
                default: input.SkipLastField(); break;
            }
        }
        return (domain, version);
    }

    private static OnnxGraph ReadGraph(CodedInputStream input)
    {
        var graph = new OnnxGraph();
        uint tag;
        while ((tag = input.ReadTag()) != 0)
        {
            switch (WireFormat.GetTagFieldNumber(tag))
            {
                case 1: graph.Nodes.Add(ReadNode(Nested(input))); break;
                case 2: graph.Name = input.ReadString(); break;
                case 5: graph.Initializers.Add(ReadTensor(Nested(input))); break;
                case 11: graph.Inputs.Add(ReadValueInfoName(Nested(input))); break;
                case 12: graph.Outputs.Add(ReadValueInfoName(Nested(input))); break;
                case 15: input.SkipLastField(); graph.SparseInitializers++; break;
                default: input.SkipLastField(); break;
            }
        }
        return graph;
    }

    private static string ReadValueInfoName(CodedInputStream input)
    {
        string name = "";
        uint tag;
        while ((tag = input.ReadTag()) != 0)
        {
            if (WireFormat.GetTagFieldNumber(tag) == 1) name = input.ReadString();
            else input.SkipLastField();
        }
        return name;
    }

    private static OnnxNode ReadNode(CodedInputStream input)
    {
        var node = new OnnxNode();
        uint tag;
        while ((tag = input.ReadTag()) != 0)
        {
            switch (WireFormat.GetTagFieldNumber(tag))
            {
                case 1: node.Inputs.Add(input.ReadString()); break;
                case 2: node.Outputs.Add(input.ReadString()); break;
                case 3: node.Name = input.ReadString(); break;
                case 4: node.OpType = input.ReadString(); break;
                case 5:
                    {
                        var a = ReadAttribute(Nested(input));
                        node.Attributes[a.Name] = a;
                        break;
                    }
                case 7: node.Domain = input.ReadString(); break;
                default: input.SkipLastField(); break;
            }
        }
        return node;
    }

    private static OnnxAttribute ReadAttribute(CodedInputStream input)
    {
        var a = new OnnxAttribute();
        uint tag;
        while ((tag = input.ReadTag()) != 0)
        {
            switch (WireFormat.GetTagFieldNumber(tag))
            {
                case 1: a.Name = input.ReadString(); break;
                case 2: a.F = input.ReadFloat(); break;
                case 3: a.I = input.ReadInt64(); break;
                case 4: a.S = input.ReadBytes().ToByteArray(); break;
                case 5: a.T = ReadTensor(Nested(input)); break;
                case 7: ReadRepeated(input, tag, a.Floats, i => i.ReadFloat()); break;
                case 8: ReadRepeated(input, tag, a.Ints, i => i.ReadInt64()); break;
                default: input.SkipLastField(); break;
            }
        }
        return a;
    }

    private static OnnxTensor ReadTensor(CodedInputStream input)
    {
        var t = new OnnxTensor();
        var dims = new List<long>();
        uint tag;
        while ((tag = input.ReadTag()) != 0)
        {
            switch (WireFormat.GetTagFieldNumber(tag))
            {
                case 1: ReadRepeated(input, tag, dims, i => i.ReadInt64()); break;
                case 2: t.DataType = input.ReadInt32(); break;
                case 4: ReadRepeated(input, tag, t.FloatData ??= new List<float>(), i => i.ReadFloat()); break;
                case 5: ReadRepeated(input, tag, t.Int32Data ??= new List<int>(), i => i.ReadInt32()); break;
                case 7: ReadRepeated(input, tag, t.Int64Data ??= new List<long>(), i => i.ReadInt64()); break;
                case 8: t.Name = input.ReadString(); break;
                case 9: t.Raw = input.ReadBytes().ToByteArray(); break;
                case 10: ReadRepeated(input, tag, t.DoubleData ??= new List<double>(), i => i.ReadDouble()); break;
                case 13: input.SkipLastField(); t.External = true; break;  // external_data entries
                case 14: if (input.ReadInt32() == 1) t.External = true; break; // data_location EXTERNAL
                default: input.SkipLastField(); break;
            }
        }
        t.Dims = dims.ToArray();
        return t;
    }

    // A repeated scalar arrives packed (one length-delimited run) or one value per tag; readers must take both.
    private static void ReadRepeated<T>(CodedInputStream input, uint tag, List<T> into, Func<CodedInputStream, T> read)
    {
        if (WireFormat.GetTagWireType(tag) == WireFormat.WireType.LengthDelimited)
        {
            var packed = Nested(input);
            while (!packed.IsAtEnd) into.Add(read(packed));
        }
        else into.Add(read(input));
    }
}
