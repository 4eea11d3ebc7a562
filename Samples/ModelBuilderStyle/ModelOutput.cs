namespace MLNetQuant.Samples.ModelBuilderStyle;

/// <summary>The prediction: class probabilities from the saved model, and the class name they point to.</summary>
public sealed class ModelOutput
{
    /// <summary>Probability of each class, in the order of <see cref="ConsumeModel.ClassNames"/>.</summary>
    public float[] Score { get; set; } = Array.Empty<float>();

    /// <summary>The most probable class name (filled by <see cref="ConsumeModel.Predict"/>: the saved ONNX model has no
    /// key-typed PredictedLabel column — see docs/ml-net-surface.md).</summary>
    public string PredictedLabel { get; set; } = "";
}
