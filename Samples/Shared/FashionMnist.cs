using System.IO.Compression;

namespace MLNetQuant.Samples.Shared;

/// <summary>Reads Fashion-MNIST in its idx format: Debian's dataset-fashion-mnist when installed, else the slice that
/// ships beside the sample.</summary>
public static class FashionMnist
{
    public const string DebianDirectory = "/usr/share/datasets/fashion-mnist";

    public static readonly string[] ClassNames =
        { "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot" };

    /// <summary>Images as 784 floats in [0, 1] and labels 0–9, at most <paramref name="limit"/> of them.</summary>
    public static (float[][] Images, int[] Labels, string Source) Load(bool train, int limit)
    {
        var prefix = train ? "train" : "t10k";
        var directory = File.Exists(Path.Combine(DebianDirectory, $"{prefix}-images-idx3-ubyte.gz"))
            ? DebianDirectory
            : Path.Combine(AppContext.BaseDirectory, "data");
        var imagesPath = Path.Combine(directory, $"{prefix}-images-idx3-ubyte.gz");
        var labelsPath = Path.Combine(directory, $"{prefix}-labels-idx1-ubyte.gz");
        if (!File.Exists(imagesPath) || !File.Exists(labelsPath))
            throw new FileNotFoundException(
                $"Fashion-MNIST not found: install Debian's dataset-fashion-mnist or keep {imagesPath} and {labelsPath}.");

        var images = ReadIdx(imagesPath, expectedMagic: 2051, limit, out var count, out var rowLength);
        var labels = ReadIdx(labelsPath, expectedMagic: 2049, limit, out var labelCount, out _);
        if (labelCount != count)
            throw new InvalidDataException($"{imagesPath} holds {count} images but {labelsPath} {labelCount} labels.");

        var rows = new float[count][];
        for (var i = 0; i < count; i++)
        {
            rows[i] = new float[rowLength];
            for (var j = 0; j < rowLength; j++) rows[i][j] = images[i * rowLength + j] / 255f;
        }
        return (rows, labels.Select(b => (int)b).ToArray(), directory);
    }

    private static byte[] ReadIdx(string path, int expectedMagic, int limit, out int count, out int rowLength)
    {
        using var stream = new GZipStream(File.OpenRead(path), CompressionMode.Decompress);
        using var reader = new BinaryReader(stream);
        var magic = ReadBigEndian(reader);
        if (magic != expectedMagic)
            throw new InvalidDataException($"{path}: idx magic {magic}, expected {expectedMagic}.");
        var total = ReadBigEndian(reader);
        rowLength = 1;
        for (var d = 1; d < (magic & 0xff); d++) rowLength *= ReadBigEndian(reader);
        count = Math.Min(total, limit);
        var bytes = reader.ReadBytes(count * rowLength);
        if (bytes.Length != count * rowLength) throw new EndOfStreamException($"{path} is truncated.");
        return bytes;
    }

    private static int ReadBigEndian(BinaryReader reader)
    {
        var b = reader.ReadBytes(4);
        return b[0] << 24 | b[1] << 16 | b[2] << 8 | b[3];
    }
}
