using Microsoft.ML;
using Microsoft.ML.Data;

namespace MLNetQuant.Samples.Shared;

/// <summary>One Fashion-MNIST image as an ML.NET row: 784 normalised pixels and the class 0–9.</summary>
public sealed class FashionRow
{
    /// <summary>Pixels scaled to [0, 1], then normalised with the dataset's mean 0.2860 and standard deviation 0.3530.</summary>
    [VectorType(784)]
    public float[] Features { get; set; } = Array.Empty<float>();

    /// <summary>The class index (T-shirt/top = 0 … Ankle boot = 9).</summary>
    public uint Label { get; set; }
}

/// <summary>Fashion-MNIST as an IDataView.</summary>
public static class FashionData
{
    /// <summary>Mean of the training pixels in [0, 1].</summary>
    public const float Mean = 0.2860f;

    /// <summary>Standard deviation of the training pixels in [0, 1].</summary>
    public const float Std = 0.3530f;

    /// <summary>At most <paramref name="limit"/> rows of the training or test split, normalised.</summary>
    public static (IDataView Data, int Rows, string Source) Load(MLContext ml, bool train, int limit)
    {
        var (images, labels, source) = FashionMnist.Load(train, limit);
        var rows = new FashionRow[labels.Length];
        for (var i = 0; i < rows.Length; i++)
        {
            var pixels = images[i];
            for (var j = 0; j < pixels.Length; j++) pixels[j] = (pixels[j] - Mean) / Std;
            rows[i] = new FashionRow { Features = pixels, Label = (uint)labels[i] };
        }
        return (ml.Data.LoadFromEnumerable(rows), rows.Length, source);
    }
}
