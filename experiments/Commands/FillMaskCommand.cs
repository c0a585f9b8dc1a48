using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using NativeSparsity.Engine.Backends;
using NativeSparsity.Models.Bert;
using NativeSparsity.Models.Text;

namespace NativeSparsity.Experiments.Commands;

/// <summary>`nsparse fill-mask`: the top tokens for each [MASK] of a sentence.</summary>
public static class FillMaskCommand
{
    public static Command Build()
    {
        var cmd = new Command("fill-mask", "Predict the tokens hidden by [MASK] in a text with a checkpoint's MLM head.");
        var checkpoint = new Option<string>("--checkpoint") { Description = $"Checkpoint with an MLM head and its tokenizer: {CheckpointResolver.Help}.", Required = true };
        var top = new Option<int>("--top") { Description = "How many candidates per [MASK].", DefaultValueFactory = _ => 5 }.Positive();
        var json = new Option<bool>("--json") { Description = "Print JSON with the candidates and the raw logits of every masked position." };
        var device = CommonOptions.Device();
        var text = new Argument<string>("text") { Description = "Text containing one or more [MASK]." };
        cmd.Options.Add(checkpoint); cmd.Options.Add(top); cmd.Options.Add(json); cmd.Options.Add(device);
        cmd.Arguments.Add(text);
        cmd.SetAction(r => CommandRunner.Run(() =>
            Console.WriteLine(Run(CheckpointResolver.Resolve(r.GetValue(checkpoint)!), r.GetValue(text)!, r.GetValue(top), r.GetValue(json), r.GetValue(device)!))));
        return cmd;
    }

    public static string Run(string folder, string text, int top, bool asJson, string device = "cpu")
    {
        var tokenizer = Tokenizers.LoadFor(folder, BertCheckpoint.ReadConfig(folder).VocabSize);
        var heads = BertHeadDetection.Detect(folder);
        if (!heads.MaskedLm)
            throw new InvalidDataException($"{folder}: the checkpoint has no MLM head (cls.predictions.*); fill-mask needs one");
        using var backend = BackendFactory.Create(device, out _);
        var (p, _) = BertCheckpoint.Load(folder, backend, BertHeads.PreTraining with { Pooler = heads.Pooler });
        using (p)
        {
            var sp = tokenizer.Special;
            var ids = new List<int> { sp.Cls };
            ids.AddRange(tokenizer.Encode(text));
            ids.Add(sp.Sep);
            if (ids.Count > p.Config.MaxPositionEmbeddings)
                throw new ArgumentException($"the text is {ids.Count} tokens long; the model takes at most {p.Config.MaxPositionEmbeddings}");
            var positions = Enumerable.Range(0, ids.Count).Where(i => ids[i] == sp.Mask).ToArray();
            if (positions.Length == 0) throw new ArgumentException($"the text has no {SpecialTokenIds.MaskText} token");
            var batch = new BertBatch(1, ids.Count);
            ids.CopyTo(batch.InputIds);
            Array.Fill(batch.AttentionMask, 1);
            batch.MlmPositions = positions;
            batch.MlmLabels = new int[positions.Length];
            using var model = new BertModel(p, 1, ids.Count);
            model.Forward(batch, DropoutPlan.Off);
            int v = p.Config.VocabSize;
            var logits = new float[positions.Length * v];
            backend.CopyToHost<float>(model.MaskedLmLogits, logits);
            var result = new JsonArray();
            var lines = new List<string>();
            for (int m = 0; m < positions.Length; m++)
            {
                var row = logits.AsSpan(m * v, v).ToArray();
                double max = double.NegativeInfinity;
                foreach (float x in row) max = Math.Max(max, x);
                double z = 0;
                foreach (float x in row) z += Math.Exp(x - max);
                var best = Enumerable.Range(0, v).OrderByDescending(i => row[i]).Take(top).ToArray();
                var candidates = new JsonArray(best.Select(i => (JsonNode)new JsonObject
                {
                    ["token_id"] = i, ["token"] = tokenizer.TokenText(i), ["probability"] = Math.Exp(row[i] - max) / z, ["logit"] = row[i],
                }).ToArray());
                result.Add((JsonNode)new JsonObject
                {
                    ["position"] = positions[m], ["candidates"] = candidates,
                    ["logits"] = asJson ? new JsonArray(row.Select(x => (JsonNode)JsonValue.Create(x)).ToArray()) : null,
                });
                lines.Add($"[MASK] at token {positions[m]}: " + string.Join("  ", best.Select(i => $"{tokenizer.TokenText(i)} ({Math.Exp(row[i] - max) / z:P1})")));
            }
            return asJson
                ? new JsonObject { ["text"] = text, ["input_ids"] = new JsonArray(ids.Select(i => (JsonNode)JsonValue.Create(i)).ToArray()), ["masks"] = result }
                    .ToJsonString(new JsonSerializerOptions { WriteIndented = false })
                : string.Join("\n", lines);
        }
    }
}
