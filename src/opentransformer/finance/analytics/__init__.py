"""Numbers computed from prices: returns, indicators (TA-Lib), risk, portfolio statistics, option
prices and indicator backtests. Each module states the convention of the reference it matches."""
