namespace MLNetQuant;

/// <summary>Which tensor of a layer is quantized (NNI's quant_types).</summary>
public enum QuantType
{
    /// <summary>The layer's weight.</summary>
    Weight,

    /// <summary>The layer's input activation.</summary>
    Input,

    /// <summary>The layer's output activation.</summary>
    Output,
}
