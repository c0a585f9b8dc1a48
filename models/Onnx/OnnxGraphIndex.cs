namespace NativeSparsity.Models.Onnx;

/// <summary>
/// Look-ups over one ONNX graph: which node produces a value, which consume it, and the constant
/// tensors (initializers and Constant nodes' values) by value name.
/// </summary>
internal sealed class OnnxGraphIndex
{
    private readonly Dictionary<string, OnnxNode> _producer = new(StringComparer.Ordinal);
    private readonly Dictionary<string, List<OnnxNode>> _consumers = new(StringComparer.Ordinal);
    private readonly Dictionary<string, OnnxTensor> _constants = new(StringComparer.Ordinal);

    public OnnxGraphIndex(OnnxGraph graph)
    {
        Graph = graph;
        foreach (var t in graph.Initializers) _constants[t.Name] = t;
        Initializers = graph.Initializers.GroupBy(t => t.Name).ToDictionary(g => g.Key, g => g.First(), StringComparer.Ordinal);
        foreach (var node in graph.Nodes)
        {
            foreach (string o in node.Outputs) if (o.Length > 0) _producer[o] = node;
            foreach (string i in node.Inputs)
            {
                if (i.Length == 0) continue;
                if (!_consumers.TryGetValue(i, out var list)) _consumers[i] = list = new List<OnnxNode>();
                list.Add(node);
            }
            if (node.OpType == "Constant" && node.Outputs.Count == 1 && node.Attributes.TryGetValue("value", out var v) && v.T != null)
                _constants[node.Outputs[0]] = v.T;
        }
    }

    public OnnxGraph Graph { get; }
    public IReadOnlyDictionary<string, OnnxTensor> Initializers { get; }

    public OnnxNode? Producer(string value) => _producer.GetValueOrDefault(value);

    public IReadOnlyList<OnnxNode> Consumers(string value) =>
        _consumers.TryGetValue(value, out var list) ? list : Array.Empty<OnnxNode>();

    public OnnxTensor? Constant(string value) => _constants.GetValueOrDefault(value);

    public bool IsInitializer(string value) => Initializers.ContainsKey(value);

    /// <summary>A scalar (one-element) float constant's value, or null.</summary>
    public float? ScalarFloat(string value)
    {
        var t = Constant(value);
        if (t == null || t.ElementCount != 1 || t.DataType is not ((int)OnnxDataType.Float or (int)OnnxDataType.Double)) return null;
        return t.ToFloats()[0];
    }

    /// <summary>
    /// A shape vector as far as it is constant: a constant int tensor, or a Concat of constants and
    /// Unsqueezed scalars (one unknown entry each, as -1). Null when its length is not known.
    /// </summary>
    public long[]? PartialShape(string value)
    {
        var t = Constant(value);
        if (t != null) return t.DataType is (int)OnnxDataType.Int64 or (int)OnnxDataType.Int32 ? t.ToInt64s() : null;
        var node = Producer(value);
        if (node == null) return null;
        if (node.OpType == "Concat")
        {
            var parts = new List<long>();
            foreach (string input in node.Inputs)
            {
                var part = PartialShape(input);
                if (part == null) return null;
                parts.AddRange(part);
            }
            return parts.ToArray();
        }
        if (node.OpType == "Unsqueeze") return new long[] { -1 }; // a dynamic dimension (batch, sequence)
        return null;
    }
}
