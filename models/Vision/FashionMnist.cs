namespace NativeSparsity.Models.Vision;

/// <summary>Fashion-MNIST's official training set (60,000 images) and test set (10,000), and the folder they came from.</summary>
public sealed record FashionMnistData(LabeledImages Train, LabeledImages Test, string Folder)
{
    /// <summary>
    /// The training set split into train and a class-stratified validation part of
    /// <paramref name="validationSize"/> images (see <see cref="DatasetSplit.Stratified"/>); then, when
    /// <paramref name="trainPerClass"/> or <paramref name="validationPerClass"/> is positive, each part
    /// cut to that many images per class (see <see cref="DatasetSplit.SubsamplePerClass"/>, same seed).
    /// </summary>
    public (LabeledImages Train, LabeledImages Validation) SplitTrain(int validationSize = FashionMnist.DefaultValidationSize, ulong seed = 0,
                                                                      int trainPerClass = 0, int validationPerClass = 0)
    {
        var (train, validation) = DatasetSplit.Stratified(Train.Labels, Train.ClassCount, validationSize, seed);
        if (trainPerClass > 0) train = DatasetSplit.SubsamplePerClass(train, Train.Labels, Train.ClassCount, trainPerClass, seed);
        if (validationPerClass > 0) validation = DatasetSplit.SubsamplePerClass(validation, Train.Labels, Train.ClassCount, validationPerClass, seed);
        return (Train.Subset(train), Train.Subset(validation));
    }
}

/// <summary>
/// Loads Fashion-MNIST (Xiao, Rasul, Vollgraf 2017) from its four IDX files, gzipped or raw.
/// Without a folder, looks in: $NSPARSE_FASHION_MNIST, the checkout's .tools/fashion-mnist (filled
/// by scripts/fetch-fashion-mnist.sh), then /usr/share/datasets/fashion-mnist (Debian's
/// dataset-fashion-mnist package).
/// </summary>
public static class FashionMnist
{
    /// <summary>The command that puts the data where <see cref="Load"/> looks (no root needed).</summary>
    public const string InstallCommand = "scripts/fetch-fashion-mnist.sh";

    /// <summary>Where Debian's package installs the files (`apt-get install dataset-fashion-mnist`, as root).</summary>
    public const string DebianFolder = "/usr/share/datasets/fashion-mnist";

    /// <summary>Environment variable naming a folder to look in first.</summary>
    public const string FolderVariable = "NSPARSE_FASHION_MNIST";

    public const string TrainImagesFile = "train-images-idx3-ubyte";
    public const string TrainLabelsFile = "train-labels-idx1-ubyte";
    public const string TestImagesFile = "t10k-images-idx3-ubyte";
    public const string TestLabelsFile = "t10k-labels-idx1-ubyte";

    public const int ClassCount = 10;
    public const int DefaultValidationSize = 5000;

    /// <summary>Class names, indexed by label.</summary>
    public static IReadOnlyList<string> ClassNames { get; } =
        ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

    /// <summary>The folders searched when none is given, in order (only those that can be named).</summary>
    public static IReadOnlyList<string> CandidateFolders()
    {
        var folders = new List<string>();
        string? fromEnvironment = Environment.GetEnvironmentVariable(FolderVariable);
        if (!string.IsNullOrWhiteSpace(fromEnvironment)) folders.Add(fromEnvironment);
        foreach (string start in new[] { AppContext.BaseDirectory, Directory.GetCurrentDirectory() })
        {
            string? root = CheckoutRoot(start);
            if (root == null) continue;
            string folder = Path.Combine(root, ".tools", "fashion-mnist", "usr", "share", "datasets", "fashion-mnist");
            if (!folders.Contains(folder)) folders.Add(folder);
        }
        folders.Add(DebianFolder);
        return folders;
    }

    /// <summary>The first candidate folder that holds all four files, or null.</summary>
    public static string? FindFolder() => CandidateFolders().FirstOrDefault(HasAllFiles);

    /// <summary>True when <paramref name="folder"/> holds the four files (each gzipped or raw).</summary>
    public static bool HasAllFiles(string folder) =>
        new[] { TrainImagesFile, TrainLabelsFile, TestImagesFile, TestLabelsFile }.All(f => Resolve(folder, f) != null);

    /// <summary>
    /// Loads the training and test sets from <paramref name="folder"/>, or from the first candidate
    /// folder holding all four files. A missing file is a <see cref="FileNotFoundException"/> naming
    /// it, the folders searched, and <see cref="InstallCommand"/>.
    /// </summary>
    public static FashionMnistData Load(string? folder = null)
    {
        IReadOnlyList<string> searched = folder != null ? [folder] : CandidateFolders();
        folder ??= FindFolder() ?? searched[0];
        var train = LoadPair(Require(folder, TrainImagesFile, searched), Require(folder, TrainLabelsFile, searched), ClassCount);
        var test = LoadPair(Require(folder, TestImagesFile, searched), Require(folder, TestLabelsFile, searched), ClassCount);
        if (test.Height != train.Height || test.Width != train.Width)
            throw new InvalidDataException($"Fashion-MNIST in '{folder}': test images are {test.Height}x{test.Width}, training images {train.Height}x{train.Width}");
        return new FashionMnistData(train, test, folder);
    }

    /// <summary>
    /// Loads one images file ([N, H, W] ubyte) and its labels file ([N] ubyte, each below
    /// <paramref name="classCount"/>), checking that they agree.
    /// </summary>
    public static LabeledImages LoadPair(string imagesPath, string labelsPath, int classCount = ClassCount)
    {
        var images = IdxFile.Read(imagesPath);
        var labels = IdxFile.Read(labelsPath);
        if (images.Type != IdxDataType.UByte || images.Shape.Length != 3)
            throw new InvalidDataException($"IDX file '{imagesPath}': expected images of type ubyte with shape [N, H, W], found {images.Type} [{string.Join(", ", images.Shape)}]");
        if (labels.Type != IdxDataType.UByte || labels.Shape.Length != 1)
            throw new InvalidDataException($"IDX file '{labelsPath}': expected labels of type ubyte with shape [N], found {labels.Type} [{string.Join(", ", labels.Shape)}]");
        if (labels.Shape[0] != images.Shape[0])
            throw new InvalidDataException($"IDX file '{labelsPath}': expected {images.Shape[0]} labels, one per image of '{imagesPath}', found {labels.Shape[0]}");
        var labelBytes = labels.Data;
        var classes = new int[labelBytes.Length];
        for (int i = 0; i < classes.Length; i++)
        {
            if (labelBytes[i] >= classCount)
                throw new InvalidDataException($"IDX file '{labelsPath}': expected labels below {classCount}, found {labelBytes[i]} at index {i}");
            classes[i] = labelBytes[i];
        }
        return new LabeledImages(images.Data, classes, images.Shape[1], images.Shape[2], 1, classCount);
    }

    private static string Require(string folder, string name, IReadOnlyList<string> searched)
    {
        if (Resolve(folder, name) is { } path) return path;
        string where = Directory.Exists(folder) ? $"folder '{folder}'" : $"folder '{folder}' (which does not exist)";
        throw new FileNotFoundException(
            $"Fashion-MNIST file {name}.gz (or {name}) not found in {where}; searched: {string.Join(", ", searched)}. " +
            $"Install the data with: {InstallCommand}", Path.Combine(folder, name + ".gz"));
    }

    private static string? Resolve(string folder, string name)
    {
        foreach (string candidate in new[] { name + ".gz", name })
        {
            string path = Path.Combine(folder, candidate);
            if (File.Exists(path)) return path;
        }
        return null;
    }

    private static string? CheckoutRoot(string start)
    {
        for (var dir = new DirectoryInfo(start); dir != null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "NativeSparsity.sln"))) return dir.FullName;
        return null;
    }
}
