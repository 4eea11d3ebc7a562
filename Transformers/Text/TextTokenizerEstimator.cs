using Microsoft.ML;
using Microsoft.ML.Data;

namespace MLNetQuant.Text;

/// <summary>The BERT tokenizer as an ML.NET estimator: a text column in, <c>input_ids</c>, <c>attention_mask</c> and
/// <c>token_type_ids</c> (Int64 vectors of MaxTokens) out — the columns a quantized text embedder reads. Nothing to
/// learn: <see cref="Fit"/> returns the tokenizer.</summary>
public sealed class TextTokenizerEstimator : IEstimator<TextTokenizerTransformer>
{
    private readonly TextTokenizerTransformer _tokenizer;

    internal TextTokenizerEstimator(TextTokenizerTransformer tokenizer) => _tokenizer = tokenizer;

    /// <summary>Returns the tokenizer (checking that the data has its text column).</summary>
    public TextTokenizerTransformer Fit(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        _tokenizer.GetOutputSchema(input.Schema);
        return _tokenizer;
    }

    /// <summary>The input columns plus the three known-size Int64 token vectors.</summary>
    /// <exception cref="ArgumentException">No text column of the tokenizer's input name.</exception>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        var text = inputSchema.FirstOrDefault(c => c.Name == _tokenizer.InputColumnName);
        if (text.Name is null || text.ItemType is not TextDataViewType || text.Kind != SchemaShape.Column.VectorKind.Scalar)
            throw new ArgumentException($"The input needs a text column '{_tokenizer.InputColumnName}' to tokenize.", nameof(inputSchema));
        return _tokenizer.GetOutputShape(inputSchema);
    }
}
