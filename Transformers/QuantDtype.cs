namespace MLNetQuant;

/// <summary>Signedness of the integer grid a tensor is quantized to.</summary>
public enum QuantDtype
{
    /// <summary>Signed integers, e.g. int8: [-128, 127].</summary>
    Int,

    /// <summary>Unsigned integers, e.g. uint8: [0, 255].</summary>
    UInt,
}
