using Microsoft.ML;
using Microsoft.ML.Data;
using MLNetQuant.OnnxPtq;

namespace MLNetQuant;

/// <summary>Post-training quantization of an existing float ONNX model as an ML.NET estimator: <see cref="Fit"/>
/// calibrates in ONNX Runtime over its input (Observer), only rounds the weights (Naive) or quantizes weights and lets
/// activations be quantized at run time (Dynamic) or packs them as 4-bit blocks (Int4), and returns the same <see cref="QuantizedModelTransformer"/> as the
/// training estimators.</summary>
/// <remarks>
/// <format type="text/markdown"><![CDATA[
/// ### Estimator characteristics
/// |  |  |
/// | -- | -- |
/// | Does this estimator need to look at the data to train its parameters? | Observer and Int4 with GPTQ: yes (calibration); Naive, Dynamic, Int4 rounding to nearest: no (the schema binds the inputs) |
/// | Input column data type | One known-size vector per model input, of the element type it takes (Single, Double, Int64, Int32, Boolean); with TextInput, one text column |
/// | Output column data type | Vectors of the model's output types (by default the first output as Score); with PredictedLabelColumnName, a key (the arg-max class) |
/// | Required NuGet in addition to Microsoft.ML | MLNetQuant, Microsoft.ML.OnnxTransformer, ONNX Runtime |
/// ]]></format>
/// </remarks>
public sealed class OnnxQuantizationEstimator : IEstimator<QuantizedModelTransformer>
{
    private readonly MLContext _ml;
    private readonly OnnxModelOptions _options;
    private readonly OnnxQuantizationMode _mode;
    private readonly OnnxPostTrainingQuantizer _quantizer;

    internal OnnxQuantizationEstimator(MLContext ml, OnnxModelOptions options, OnnxQuantizationMode mode)
    {
        _ml = ml;
        _options = options ?? throw new ArgumentNullException(nameof(options));
        options.Validate();
        var expected = mode switch
        {
            OnnxQuantizationMode.Dynamic => typeof(DynamicQuantizationOptions),
            OnnxQuantizationMode.Int4 => typeof(Int4QuantizationOptions),
            _ => typeof(OnnxQuantizationOptions),
        };
        if (options.GetType() != expected) throw new ArgumentException($"{mode} takes {expected.Name}.", nameof(options));
        if (options.TextInput is not null && options is OnnxQuantizationOptions { ValidationData: not null })
            throw new ArgumentException("TextInput does not combine with the tolerance search (ValidationData): tokenize with TokenizeText before the " +
                "estimator instead.", nameof(options));
        _mode = mode;
        // Importing here names an unsupported opset, op or output before any data is read.
        _quantizer = new OnnxPostTrainingQuantizer(options);
        _quantizer.OutputColumns();
    }

    /// <summary>Calibrates (Observer), rounds the weights (Naive) or writes the dynamic (Dynamic) or int4 (Int4) model, and wraps the
    /// quantized model.</summary>
    public QuantizedModelTransformer Fit(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var label = LabelColumn(input.Schema);
        // Static quantization edits the quantizer's copy of the model (equalization, bias correction) and keeps per-node
        // state (AdaRound's codes, mixed-precision widths): a fresh quantizer per static Fit, so fitting twice gives one
        // model whatever options are set. Dynamic and Int4 only read it.
        var quantizer = _options is OnnxQuantizationOptions ? new OnnxPostTrainingQuantizer(_options) : _quantizer;
        if (_options.TextInput is { } text)
        {
            // Quantized on the tokens TokenizeText writes (padded: calibration batches need one length), then given the
            // tokenizer in front, unpadded: each text runs at its own token count.
            CheckTextColumn(input.Schema, text);
            using var tokenizer = Text.TextTokenizer.Create(_ml, text.VocabularyPath, text.TextColumnName, text.MaxTokens, text.LowerCase).Fit(input);
            var tokens = Quantize(quantizer, tokenizer.Transform(input));
            var onnx = TextInputModel.Prepend(tokens, text);
            return new QuantizedModelTransformer(_ml, onnx, new[] { text.TextColumnName }, tokens.OutputColumns, null, tokens.Report,
                _options.PredictedLabelColumnName, label, input);
        }
        var quantized = Quantize(quantizer, input);
        return new QuantizedModelTransformer(_ml, quantized.Onnx, quantized.InputColumns, quantized.OutputColumns, quantized.InputShapes,
            quantized.Report, _options.PredictedLabelColumnName, label, input);
    }

    private QuantizedModel Quantize(OnnxPostTrainingQuantizer quantizer, IDataView input) => _mode switch
    {
        OnnxQuantizationMode.Dynamic => quantizer.QuantizeDynamic(_ml, input),
        OnnxQuantizationMode.Int4 => quantizer.QuantizeInt4(_ml, input),
        _ => quantizer.Quantize(_ml, input, weightOnly: _mode == OnnxQuantizationMode.Naive, candidate => Evaluate(candidate, input)),
    };

    private static void CheckTextColumn(DataViewSchema schema, TextInputOptions text)
    {
        var column = schema.GetColumnOrNull(text.TextColumnName);
        if (column is null || column.Value.Type is not TextDataViewType)
            throw new ArgumentException($"TextInput reads a text column '{text.TextColumnName}'; the input has " +
                (column is null ? "none" : $"it as {column.Value.Type}") + ".", nameof(schema));
    }

    // The tolerance search's metric of one candidate model on the validation data, scored as the fitted transformer
    // would score it.
    private double Evaluate(QuantizedModel candidate, IDataView calibration)
    {
        var options = (OnnxQuantizationOptions)_options;
        var validation = options.ValidationData!;
        using var transformer = new QuantizedModelTransformer(_ml, candidate.Onnx, candidate.InputColumns, candidate.OutputColumns, candidate.InputShapes,
            candidate.Report, _options.PredictedLabelColumnName, LabelColumn(validation.Schema), calibration);
        return options.Metric!.Compute(_ml, transformer.Transform(validation));
    }

    private DataViewSchema.Column? LabelColumn(DataViewSchema schema)
    {
        if (_options.LabelColumnName is null) return null;
        var label = schema.GetColumnOrNull(_options.LabelColumnName) ?? throw new ArgumentException(
            $"The input has no label column '{_options.LabelColumnName}' (LabelColumnName).", nameof(schema));
        if (label.Type is not KeyDataViewType)
            throw new ArgumentException($"Label column '{_options.LabelColumnName}' must be a key (MapValueToKey) whose values name the classes; it is {label.Type}.", nameof(schema));
        return label;
    }

    /// <summary>The input columns plus the model's output columns and, with
    /// <see cref="OnnxModelOptions.PredictedLabelColumnName"/>, the key-typed predicted label.</summary>
    /// <exception cref="ArgumentException">A missing input column or one of the wrong item type; a missing or non-key
    /// label column.</exception>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        CheckInputColumns(inputSchema);
        SchemaShape.Column? label = null;
        if (_options.PredictedLabelColumnName is not null && _options.LabelColumnName is not null)
        {
            var column = inputSchema.FirstOrDefault(c => c.Name == _options.LabelColumnName);
            if (column.Name is null || !column.IsKey || column.Kind != SchemaShape.Column.VectorKind.Scalar)
                throw new ArgumentException($"The input needs a key column '{_options.LabelColumnName}' (LabelColumnName).", nameof(inputSchema));
            label = column;
        }
        var outputs = _quantizer.OutputColumnTypes();
        return ScoreColumnsShape.Append(_ml, inputSchema, outputs, _options.PredictedLabelColumnName is null ? 0 : ClassCount(outputs[0].Type),
            _options.PredictedLabelColumnName, label);
    }

    // The text column (TextInput), or a known-size vector column of the right item type per model input.
    private void CheckInputColumns(SchemaShape inputSchema)
    {
        if (_options.TextInput is { } text)
        {
            var textColumn = inputSchema.FirstOrDefault(c => c.Name == text.TextColumnName);
            if (textColumn.Name is null || textColumn.ItemType is not TextDataViewType || textColumn.Kind != SchemaShape.Column.VectorKind.Scalar)
                throw new ArgumentException($"TextInput reads a text column '{text.TextColumnName}'.", nameof(inputSchema));
            return;
        }
        foreach (var (graphInput, column, itemType) in _quantizer.InputColumns())
        {
            var shape = inputSchema.FirstOrDefault(c => c.Name == column);
            if (shape.Name is null || shape.ItemType != itemType || shape.Kind == SchemaShape.Column.VectorKind.VariableVector)
                throw new ArgumentException($"The input needs a known-size {itemType} vector column '{column}' for the model input '{graphInput}'.", nameof(inputSchema));
        }
    }

    // The number of values per row of the score output: the classes.
    private int ClassCount(DataViewType score) => score is VectorDataViewType { Size: > 0 } vector ? vector.Size
        : throw new InvalidOperationException($"The model's score output ('{_options.ScoreColumnName}') has no fixed size per row, so it cannot be read as one score per class.");
}
