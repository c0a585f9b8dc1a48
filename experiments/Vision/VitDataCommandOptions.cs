using NativeSparsity.Experiments.Commands;
using System.CommandLine;

namespace NativeSparsity.Experiments.Vision;

/// <summary>The command-line options that choose a ViT's Fashion-MNIST images (ViT only; a BERT ignores them).</summary>
public sealed class VitDataCommandOptions
{
    public VitDataCommandOptions(int trainPerClass = 0, int validationPerClass = 0, int testPerClass = 0)
    {
        TrainPerClass = new Option<int>("--train-per-class") { Description = "(ViT) Training images per class from the 55,000-image train split (0: all).", DefaultValueFactory = _ => trainPerClass }.NonNegative();
        ValidationPerClass = new Option<int>("--val-per-class") { Description = "(ViT) Validation images per class from the 5,000 held out of the official training set (0: all 500).", DefaultValueFactory = _ => validationPerClass }.NonNegative();
        TestPerClass = new Option<int>("--test-per-class") { Description = "(ViT) Test images per class from the official 10,000 (0: all).", DefaultValueFactory = _ => testPerClass }.NonNegative();
    }

    public Option<string?> DataDir { get; } = new("--data-dir") { Description = "(ViT) Folder with the Fashion-MNIST IDX files (default: $NSPARSE_FASHION_MNIST, .tools/fashion-mnist from scripts/fetch-fashion-mnist.sh, /usr/share/datasets/fashion-mnist)." };
    public Option<int> TrainPerClass { get; }
    public Option<int> ValidationPerClass { get; }
    public Option<int> TestPerClass { get; }
    public Option<bool> NoAugment { get; } = new("--no-augment") { Description = "(ViT) Fine-tune without the random crop and horizontal flip." };

    public void AddTo(Command cmd)
    {
        foreach (Option o in new Option[] { DataDir, TrainPerClass, ValidationPerClass, TestPerClass, NoAugment }) cmd.Options.Add(o);
    }

    public VitDataOptions Read(ParseResult r)
    {
        return new VitDataOptions
        {
            DataFolder = r.GetValue(DataDir), TrainPerClass = r.GetValue(TrainPerClass), ValidationPerClass = r.GetValue(ValidationPerClass),
            TestPerClass = r.GetValue(TestPerClass),
        };
    }
}
