using System.Diagnostics.CodeAnalysis;
using System.Text.RegularExpressions;
using NativeSparsity.Models.Bert;

namespace NativeSparsity.Models.Onnx;

/// <summary>A BERT encoder read out of an ONNX graph: its config and every parameter under our (HF) name, [out, in] for matrices.</summary>
public sealed record OnnxBertModel(BertConfig Config, BertHeads Heads, IReadOnlyDictionary<string, float[]> Tensors,
                                   int NamedByBias, int NamedByNode, int NamedByBoth);

/// <summary>
/// Maps a BERT-encoder ONNX export (what torch.onnx.export makes of Hugging Face's BertModel) onto
/// our HF-named layout. Named initializers keep their names ("bert." prefix optional). A Linear
/// weight exported as an anonymous initializer feeding MatMul(x, W) is named from the bias Add that
/// consumes the MatMul, or from the node's path name ("/encoder/layer.0/attention/self/query/MatMul");
/// where both exist they must agree. MatMul weights are stored [in, out] and are transposed; a Gemm
/// weight with transB=1 is already [out, in]. Sizes come from the tensors' shapes, the number of
/// heads from the attention Reshape's constant shape, LayerNorm eps from the graph. Anything else is
/// refused with one line naming the node or tensor.
/// </summary>
public static class OnnxBertMapping
{
    // Ops a BERT encoder export consists of (the arithmetic, the spelled-out LayerNorm and GELU, shape plumbing).
    private static readonly HashSet<string> KnownOps = new(StringComparer.Ordinal)
    {
        "Add", "Sub", "Mul", "Div", "Pow", "Sqrt", "Erf", "Tanh", "MatMul", "Gemm", "Gather", "Shape", "Unsqueeze", "Squeeze",
        "Concat", "Reshape", "Transpose", "Softmax", "ReduceMean", "Constant", "ConstantOfShape", "Cast", "Slice", "Expand",
        "Equal", "Where", "Identity", "LayerNormalization", "Range", "Not",
    };

    private static readonly Regex LinearPrefix = new(
        @"^bert\.(encoder\.layer\.\d+\.(attention\.self\.(query|key|value)|attention\.output\.dense|intermediate\.dense|output\.dense)|pooler\.dense)$",
        RegexOptions.CultureInvariant);

    private static readonly Regex LayerIndex = new(@"^bert\.encoder\.layer\.(\d+)\.", RegexOptions.CultureInvariant);

    public static OnnxBertModel Map(OnnxModel model, string source)
    {
        var graph = model.Graph;
        [DoesNotReturn] void Fail(string what) => throw new InvalidDataException($"{source}: {what}");
        if (graph.SparseInitializers > 0) Fail("the graph has sparse initializers; only dense float32 initializers are imported");
        foreach (var t in graph.Initializers.Concat(ConstantValues(graph)))
        {
            if (t.External) Fail($"tensor '{t.Name}' keeps its data in an external file; only self-contained ONNX files are imported");
            if (t.DataType is not ((int)OnnxDataType.Float or (int)OnnxDataType.Int64 or (int)OnnxDataType.Int32 or (int)OnnxDataType.Bool or (int)OnnxDataType.Double))
                Fail($"tensor '{t.Name}' is {t.TypeName}; only float32 weights are imported (an fp16 or quantized export cannot be mapped)");
        }
        foreach (var node in graph.Nodes)
        {
            if ((node.Domain.Length > 0 && node.Domain != "ai.onnx") || !KnownOps.Contains(node.OpType))
                Fail($"node '{node.Label}': op '{(node.Domain.Length > 0 ? node.Domain + "." : "")}{node.OpType}' is not part of the BERT encoder pattern this importer maps");
        }

        var index = new OnnxGraphIndex(graph);
        var tensors = new Dictionary<string, float[]>(StringComparer.Ordinal);
        var shapes = new Dictionary<string, int[]>(StringComparer.Ordinal);
        var consumedAsWeight = new HashSet<string>(StringComparer.Ordinal);
        int byBias = 0, byNode = 0, byBoth = 0;

        void Put(string name, string from, int[] shape, float[] data)
        {
            if (tensors.ContainsKey(name)) Fail($"tensor '{from}': a second tensor for parameter '{name}'");
            tensors[name] = data;
            shapes[name] = shape;
        }

        foreach (var node in graph.Nodes)
        {
            if (node.OpType is not ("MatMul" or "Gemm")) continue;
            if (node.Inputs.Count < 2 || !index.IsInitializer(node.Inputs[1]))
            {
                if (node.Inputs.Any(index.IsInitializer))
                    Fail($"node '{node.Label}': a {node.OpType} whose weight is not its second input is not a Linear layer this importer maps");
                continue; // activation x activation (attention scores, context)
            }
            var weight = index.Initializers[node.Inputs[1]];
            if (weight.Dims.Length != 2) Fail($"node '{node.Label}': weight '{weight.Name}' has {weight.Dims.Length} dims, expected 2");
            string? fromBias, fromNode = PrefixFromNodeName(node), fromWeight = PrefixFromTensorName(weight.Name, ".weight");
            bool transposed;
            if (node.OpType == "Gemm")
            {
                if (node.IntAttribute("transA", 0) != 0 || AttributeFloat(node, "alpha") != 1f || AttributeFloat(node, "beta") != 1f)
                    Fail($"node '{node.Label}': only Gemm with transA=0, alpha=1, beta=1 is a Linear layer");
                transposed = node.IntAttribute("transB", 0) != 0;
                fromBias = node.Inputs.Count > 2 ? PrefixFromTensorName(node.Inputs[2], ".bias") : null;
            }
            else
            {
                transposed = false;
                fromBias = BiasPrefixAfter(index, node);
            }
            var candidates = new[] { fromBias, fromNode, fromWeight }.Where(n => n != null).Distinct().ToList();
            if (candidates.Count == 0)
                Fail($"node '{node.Label}': cannot name weight '{weight.Name}' (no Add with a named bias consumes it and the node name is not a layer path)");
            if (candidates.Count > 1)
                Fail($"node '{node.Label}': weight '{weight.Name}' is named '{candidates[0]}.weight' by one source and '{candidates[1]}.weight' by another");
            string prefix = candidates[0]!;
            if (fromBias != null && fromNode != null) byBoth++; else if (fromBias != null) byBias++; else byNode++;
            var data = weight.ToFloats();
            int rows = (int)weight.Dims[0], cols = (int)weight.Dims[1];
            if (transposed) Put(prefix + ".weight", weight.Name, new[] { rows, cols }, data);
            else Put(prefix + ".weight", weight.Name, new[] { cols, rows }, Transpose(data, rows, cols));
            consumedAsWeight.Add(weight.Name);
        }

        foreach (var t in graph.Initializers)
        {
            if (consumedAsWeight.Contains(t.Name) || t.DataType != (int)OnnxDataType.Float) continue;
            string canonical = BertCheckpoint.Canonical(t.Name);
            bool known = canonical.StartsWith("bert.embeddings.", StringComparison.Ordinal) && !canonical.EndsWith("position_ids", StringComparison.Ordinal)
                         || (canonical.StartsWith("bert.", StringComparison.Ordinal) && (canonical.EndsWith(".bias", StringComparison.Ordinal) || canonical.Contains(".LayerNorm.", StringComparison.Ordinal)));
            if (known)
            {
                if (canonical.EndsWith(".weight", StringComparison.Ordinal) && LinearPrefix.IsMatch(canonical[..^".weight".Length]))
                    Fail($"tensor '{t.Name}' is not consumed as a MatMul/Gemm weight, so its orientation is unknown");
                Put(canonical, t.Name, t.Dims.Select(d => checked((int)d)).ToArray(), t.ToFloats());
            }
            else if (t.ElementCount > 1)
                Fail($"tensor '{t.Name}' [{string.Join(", ", t.Dims)}] is not a BERT encoder parameter this importer knows");
        }

        var config = InferConfig(index, tensors, shapes, source);
        var heads = new BertHeads(MaskedLm: false, NextSentence: false, Pooler: tensors.ContainsKey("bert.pooler.dense.weight"));
        var layout = new BertParameterLayout(config, heads);
        foreach (var slot in layout.Slots)
        {
            if (!shapes.TryGetValue(slot.Name, out var shape))
                Fail($"no tensor for parameter '{slot.Name}' (the export lacks it or names it in a way this importer does not follow)");
            if (!shape.SequenceEqual(slot.Shape))
                Fail($"parameter '{slot.Name}' has shape [{string.Join(", ", shape)}], the model's other tensors imply [{string.Join(", ", slot.Shape)}]");
        }
        foreach (string name in tensors.Keys)
            if (!layout.Contains(name)) Fail($"tensor for '{name}' has no place in a {config.NumHiddenLayers}-layer BERT encoder");
        CheckActivations(graph, config, heads.Pooler, source);
        return new OnnxBertModel(config, heads, tensors, byBias, byNode, byBoth);
    }

    private static IEnumerable<OnnxTensor> ConstantValues(OnnxGraph graph) =>
        graph.Nodes.Where(n => n.OpType == "Constant").SelectMany(n => n.Attributes.Values).Where(a => a.T != null).Select(a => a.T!);

    private static float AttributeFloat(OnnxNode node, string name) => node.Attributes.TryGetValue(name, out var a) ? a.F : 1f;

    // "/encoder/layer.0/attention/self/query/MatMul" -> "bert.encoder.layer.0.attention.self.query", when that is a Linear's prefix.
    private static string? PrefixFromNodeName(OnnxNode node)
    {
        if (!node.Name.StartsWith('/')) return null;
        var parts = node.Name.TrimStart('/').Split('/');
        if (parts.Length < 2) return null;
        string prefix = BertCheckpoint.Canonical(string.Join('.', parts[..^1]));
        return LinearPrefix.IsMatch(prefix) ? prefix : null;
    }

    private static string? PrefixFromTensorName(string name, string suffix)
    {
        string canonical = BertCheckpoint.Canonical(name);
        if (!canonical.EndsWith(suffix, StringComparison.Ordinal)) return null;
        string prefix = canonical[..^suffix.Length];
        return LinearPrefix.IsMatch(prefix) ? prefix : null;
    }

    // The Linear's bias: the one Add consuming the MatMul's output whose other input is a named bias initializer.
    private static string? BiasPrefixAfter(OnnxGraphIndex index, OnnxNode matMul)
    {
        var adds = index.Consumers(matMul.Outputs[0]).Where(n => n.OpType == "Add").ToList();
        if (adds.Count != 1) return null;
        var add = adds[0];
        string other = add.Inputs[0] == matMul.Outputs[0] ? add.Inputs[1] : add.Inputs[0];
        return index.IsInitializer(other) ? PrefixFromTensorName(other, ".bias") : null;
    }

    private static float[] Transpose(float[] data, int rows, int cols)
    {
        var t = new float[data.Length];
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++) t[(long)c * rows + r] = data[(long)r * cols + c];
        return t;
    }

    private static BertConfig InferConfig(OnnxGraphIndex index, Dictionary<string, float[]> tensors, Dictionary<string, int[]> shapes, string source)
    {
        int[] Shape(string name) => shapes.TryGetValue(name, out var s) ? s
            : throw new InvalidDataException($"{source}: no tensor for parameter '{name}'");
        var words = Shape("bert.embeddings.word_embeddings.weight");
        int hidden = words[1];
        int layers = tensors.Keys.Select(n => LayerIndex.Match(n)).Where(m => m.Success).Select(m => int.Parse(m.Groups[1].Value) + 1).DefaultIfEmpty(0).Max();
        if (layers == 0) throw new InvalidDataException($"{source}: no encoder layer tensors (bert.encoder.layer.N.*) found");
        int intermediate = Shape(BertParameterLayout.LayerPrefix(0) + "intermediate.dense.bias")[0];
        int heads = ReadHeads(index, hidden, layers, source);
        float eps = ReadLayerNormEps(index, source);
        var config = new BertConfig
        {
            VocabSize = words[0], HiddenSize = hidden, NumHiddenLayers = layers, NumAttentionHeads = heads, IntermediateSize = intermediate,
            MaxPositionEmbeddings = Shape("bert.embeddings.position_embeddings.weight")[0],
            TypeVocabSize = Shape("bert.embeddings.token_type_embeddings.weight")[0], LayerNormEps = eps,
        };
        try { config.Validate(); }
        catch (ArgumentException e) { throw new InvalidDataException($"{source}: {e.Message}", e); }
        return config;
    }

    // Attention splits [B, S, C] into [B, S, heads, head_dim] with a Reshape whose shape ends in two constants.
    private static int ReadHeads(OnnxGraphIndex index, int hidden, int layers, string source)
    {
        var found = new List<(int Heads, OnnxNode Node)>();
        foreach (var node in index.Graph.Nodes.Where(n => n.OpType == "Reshape" && n.Inputs.Count == 2))
        {
            // Only the Reshapes of the Q, K, V projections: their data input is a bias Add (or MatMul) over hidden-wide rows.
            var producer = index.Producer(node.Inputs[0]);
            if (producer == null || producer.OpType is not ("Add" or "MatMul")) continue;
            bool isProjection = producer.OpType == "MatMul" ? index.IsInitializer(producer.Inputs[1])
                : producer.Inputs.Any(i => index.IsInitializer(i) && PrefixFromTensorName(i, ".bias") is { } p && p.Contains(".attention.self.", StringComparison.Ordinal));
            if (!isProjection) continue;
            var shape = index.PartialShape(node.Inputs[1]);
            if (shape == null || shape.Length != 4)
                throw new InvalidDataException($"{source}: node '{node.Label}': cannot read the number of attention heads from its shape input");
            long h = shape[2], d = shape[3];
            if (h <= 0 && d > 0 && hidden % d == 0) h = hidden / d;
            if (h <= 0 || hidden % h != 0 || (d > 0 && h * d != hidden))
                throw new InvalidDataException($"{source}: node '{node.Label}': shape [{string.Join(", ", shape)}] does not split hidden size {hidden} into heads");
            found.Add(((int)h, node));
        }
        if (found.Count < layers)
            throw new InvalidDataException($"{source}: found {found.Count} attention-head Reshapes for {layers} layers; cannot read the number of heads");
        var other = found.FirstOrDefault(f => f.Heads != found[0].Heads);
        if (other.Node != null)
            throw new InvalidDataException($"{source}: node '{other.Node.Label}' splits into {other.Heads} heads, node '{found[0].Node.Label}' into {found[0].Heads}");
        return found[0].Heads;
    }

    // Each LayerNorm is a LayerNormalization op (epsilon attribute) or spelled out: (x - mean) / Sqrt(var + eps) * gamma + beta.
    private static float ReadLayerNormEps(OnnxGraphIndex index, string source)
    {
        var values = new List<(float Eps, string Gamma)>();
        foreach (var gamma in index.Initializers.Keys.Where(n => n.EndsWith("LayerNorm.weight", StringComparison.Ordinal) || n.EndsWith("LayerNorm.gamma", StringComparison.Ordinal)))
        {
            float? eps = null;
            foreach (var user in index.Consumers(gamma))
            {
                if (user.OpType == "LayerNormalization")
                    eps = user.Attributes.TryGetValue("epsilon", out var a) ? a.F : 1e-5f;
                else if (user.OpType == "Mul")
                {
                    string other = user.Inputs[0] == gamma ? user.Inputs[1] : user.Inputs[0];
                    var div = index.Producer(other);
                    var sqrt = div is { OpType: "Div", Inputs.Count: 2 } ? index.Producer(div.Inputs[1]) : null;
                    var add = sqrt is { OpType: "Sqrt" } ? index.Producer(sqrt.Inputs[0]) : null;
                    if (add is { OpType: "Add", Inputs.Count: 2 }) eps = index.ScalarFloat(add.Inputs[1]) ?? index.ScalarFloat(add.Inputs[0]);
                }
            }
            if (eps == null) throw new InvalidDataException($"{source}: tensor '{gamma}': cannot find the epsilon of its LayerNorm (expected LayerNormalization or x / Sqrt(var + eps) * gamma)");
            values.Add((eps.Value, gamma));
        }
        if (values.Count == 0) throw new InvalidDataException($"{source}: no LayerNorm weights (*.LayerNorm.weight) in the graph");
        var odd = values.FirstOrDefault(v => v.Eps != values[0].Eps);
        if (odd.Gamma != null) throw new InvalidDataException($"{source}: LayerNorm '{odd.Gamma}' has eps {odd.Eps:G}, '{values[0].Gamma}' has {values[0].Eps:G}");
        return values[0].Eps;
    }

    // The engine implements erf GELU in the encoder and tanh only in the pooler.
    private static void CheckActivations(OnnxGraph graph, BertConfig config, bool pooler, string source)
    {
        int erf = graph.Nodes.Count(n => n.OpType == "Erf"), tanh = graph.Nodes.Count(n => n.OpType == "Tanh");
        if (erf != config.NumHiddenLayers)
            throw new InvalidDataException($"{source}: {erf} Erf nodes for {config.NumHiddenLayers} layers; expected one exact (erf) GELU per layer, the only activation this engine implements");
        if (tanh != (pooler ? 1 : 0))
            throw new InvalidDataException($"{source}: {tanh} Tanh nodes; expected {(pooler ? "one, the pooler's" : "none without a pooler")} (a tanh-approximated GELU is not supported)");
    }
}
