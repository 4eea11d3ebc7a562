using Microsoft.ML.Data;

namespace MLNetQuant.Samples.Shared;

/// <summary>One ResNet-18 input row: 3×224×224 floats, preprocessed as the featurizer package's ResNetPreprocess model
/// does (0–255 pixels minus ImageNet's mean image).</summary>
public sealed class ResNetImageRow
{
    /// <summary>The preprocessed image, channel-major.</summary>
    [VectorType(ResNetTiles.Size)]
    public float[] Features { get; set; } = Array.Empty<float>();
}

/// <summary>Fashion-MNIST images as ResNet-18 inputs, for calibrating and evaluating the ImageNet model of
/// Microsoft.ML.DnnImageFeaturizer.ResNet18 (whose models the package copies to DnnImageModels/ in the output).</summary>
public static class ResNetTiles
{
    /// <summary>Height and width of a ResNet input.</summary>
    public const int Side = 224;

    /// <summary>Floats in one input.</summary>
    public const int Size = 3 * Side * Side;

    /// <summary>Where the package puts ResNet18.onnx, next to the running program.</summary>
    public static string ModelPath => Path.Combine(AppContext.BaseDirectory, "DnnImageModels", "ResNet18Onnx", "ResNet18.onnx");

    /// <summary>The ImageNet mean image the package's preprocessing model subtracts.</summary>
    public static float[] MeanImage()
    {
        var path = Path.Combine(AppContext.BaseDirectory, "DnnImageModels", "ResNetPrepOnnx", "ResNetPreprocess.onnx");
        var mean = global::Onnx.ModelProto.Parser.ParseFrom(File.ReadAllBytes(path)).Graph.Initializer.Single(t => t.Name == "MeanImage");
        return MLNetQuant.Onnx.OnnxGraphBuilder.Floats(mean);
    }

    /// <summary>The first <paramref name="count"/> images of a split, scaled ×8 to 224×224 with nearest neighbours, grey
    /// copied to three channels, 0–255 minus <paramref name="meanImage"/>. Streamed: each row (600 KB) is built when read.</summary>
    public static IEnumerable<ResNetImageRow> Load(bool train, int count, float[] meanImage)
    {
        var (images, _, _) = FashionMnist.Load(train, count);
        foreach (var image in images)
        {
            var features = new float[Size];
            for (var index = 0; index < Size; index++)
            {
                var (y, x) = (index / Side % Side, index % Side);
                features[index] = image[(y / 8) * 28 + x / 8] * 255f - meanImage[index % meanImage.Length];
            }
            yield return new ResNetImageRow { Features = features };
        }
    }
}
