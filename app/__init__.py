"""appeals: citizens send lawyer-vetted letters to their regional deputies."""
