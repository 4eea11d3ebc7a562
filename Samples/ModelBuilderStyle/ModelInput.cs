using Microsoft.ML.Data;

namespace MLNetQuant.Samples.ModelBuilderStyle;

/// <summary>One row of input, as Model Builder generates it: the pixels and the label text.</summary>
public sealed class ModelInput
{
    /// <summary>784 pixels in [0, 1] (28 × 28, row by row).</summary>
    [LoadColumn(0, 783), VectorType(784)]
    public float[] Pixels { get; set; } = Array.Empty<float>();

    /// <summary>The class name ("Sneaker" …); ignored when predicting.</summary>
    [LoadColumn(784)]
    public string Label { get; set; } = "";
}
