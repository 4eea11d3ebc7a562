namespace MLNetQuant.Samples.ModelBuilderStyle;

/// <summary>The prediction, as the saved model writes it: class probabilities and the predicted class name.</summary>
public sealed class ModelOutput
{
    /// <summary>Probability of each class, in the order of <see cref="ConsumeModel.ClassNames"/>.</summary>
    public float[] Score { get; set; } = Array.Empty<float>();

    /// <summary>The most probable class name: the estimator's key-typed PredictedLabel, mapped back to the label
    /// text by the pipeline's last step (MapKeyToValue).</summary>
    public string PredictedLabel { get; set; } = "";
}
